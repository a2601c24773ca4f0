"""Shared fixtures: a tiny contract model built by the suite itself (see guardkit.testing)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from guardkit import Guard, StreamModel
from guardkit.testing import build_tiny_bundle

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bundle(tmp_path_factory.mktemp("tiny") / "bundle", max_positions=128)


@pytest.fixture(scope="session")
def short_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model with only 48 positions, to exercise the long-stream window."""
    return build_tiny_bundle(tmp_path_factory.mktemp("short") / "bundle", max_positions=48)


@pytest.fixture(scope="session")
def tiny_model(tiny_bundle: Path) -> StreamModel:
    return StreamModel(tiny_bundle, device="cpu", threads=1)


@pytest.fixture(scope="session")
def tiny_guard(tiny_model: StreamModel) -> Guard:
    return Guard(tiny_model, policy="default")
