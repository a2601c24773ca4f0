"""The built wheel carries the default model and the policies and works from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_finds_model_and_policies(tmp_path: Path) -> None:
    if not (REPO / "models" / "guardkit-mini" / "model.onnx").is_file():
        pytest.fail("the default model bundle models/guardkit-mini is missing from the checkout")
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)], check=True, timeout=600)
    wheel = next(dist.glob("guardkit-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"{wheel}[cpu]"], check=True, timeout=900)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    code = (
        "import guardkit, pathlib; g = guardkit.Guard(); "
        "print(pathlib.Path(guardkit.__file__).parent); print(g.model.path); "
        "print(sorted(guardkit.builtin_policies())); print(g.check_response('Here is a simple bread recipe.').level)"
    )
    result = subprocess.run([str(python), "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    package_dir, model_path, policies, level = result.stdout.strip().splitlines()
    assert model_path.startswith(package_dir), "the default model must come from inside the installed package"
    assert "children" in policies and "default" in policies
    assert level in ("safe", "controversial", "unsafe")
    demo = subprocess.run([str(env_dir / "bin" / "guardkit"), "demo"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    assert "released whole" in demo.stdout and "halted after" in demo.stdout
