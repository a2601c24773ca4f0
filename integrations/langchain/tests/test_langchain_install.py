"""Install guardkit and ./integrations/langchain into a fresh virtual environment and run the example."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
_IGNORE = shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.egg-info", "dist", "build")


def _force_included() -> list[str]:
    """The source paths guardkit's wheel force-includes (the policies and the shipped model)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return list(data.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {}).get("force-include", {}))


def _copy_sources(src: Path, stand_in: Path) -> bool:
    """Copy what the two distributions and the example need (not the venv, .git or training data).

    Returns whether the shipped model is real. guardkit's wheel bundles it; while it is not in the
    checkout (it is trained separately), the tiny test bundle stands in so that the wheel builds.
    """
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "NOTICE"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, src / name)
    for name in ("guardkit", "integrations/langchain"):
        shutil.copytree(REPO / name, src / name, ignore=_IGNORE)
    (src / "examples").mkdir()
    shutil.copy2(REPO / "examples" / "langchain_chat.py", src / "examples" / "langchain_chat.py")
    real_model = True
    for rel in _force_included():
        origin, target = REPO / rel, src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=_IGNORE, dirs_exist_ok=True)
        elif origin.is_file():
            shutil.copy2(origin, target)
        else:
            real_model = False
            if (stand_in / origin.name).is_file():
                shutil.copy2(stand_in / origin.name, target)
            else:
                target.write_text("stand-in for the tests\n", encoding="utf-8")
    return real_model


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_example_runs_from_the_checkout(lc_tiny_bundle: Path) -> None:
    example = REPO / "examples" / "langchain_chat.py"
    if not example.is_file():
        pytest.skip("needs the guardkit source checkout")
    run = _run([sys.executable, str(example), "--model", str(lc_tiny_bundle)], cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "user> How do I bake bread at home?" in run.stdout
    assert "Sure, here is how to bake bread: mix the flour and water, then bake it for an hour." in run.stdout
    assert "Sure, here is how to build a \n[response withheld: it broke the content policy]" in run.stdout
    assert "bomb" not in run.stdout.split("assistant>")[-1]


@pytest.mark.slow
def test_fresh_venv_install_and_example(tmp_path: Path, lc_tiny_bundle: Path) -> None:
    if not (REPO / "integrations" / "langchain" / "pyproject.toml").is_file() or not (REPO / "examples" / "langchain_chat.py").is_file():
        pytest.skip("needs the guardkit source checkout")
    src = tmp_path / "src"
    real_model = _copy_sources(src, lc_tiny_bundle)

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")

    # the README's one command: pip install ".[cpu]" "./integrations/langchain[agents]"
    install = _run([str(python), "-m", "pip", "install", "-q", f"{src}[cpu]", f"{src / 'integrations' / 'langchain'}[agents]"], cwd=tmp_path, timeout=900)
    assert install.returncode == 0, install.stdout + install.stderr

    run = _run([str(python), str(src / "examples" / "langchain_chat.py"), "--model", str(lc_tiny_bundle)], cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "Sure, here is how to bake bread: mix the flour and water, then bake it for an hour." in out
    assert "[response withheld: it broke the content policy]" in out
    assert "bomb" not in out and "detonator" not in out

    if real_model:  # the shipped default model, as a user would run it
        default = _run([str(python), str(src / "examples" / "langchain_chat.py")], cwd=tmp_path, timeout=300)
        assert default.returncode == 0, default.stdout + default.stderr
        assert "assistant> " in default.stdout

    # the installed distribution, not the checkout, was imported
    code = "import langchain_guardkit, guardkit; assert langchain_guardkit.GuardkitMiddleware is not None; print(langchain_guardkit.__file__, guardkit.__file__)"
    where = _run([str(python), "-c", code], cwd=tmp_path, timeout=120)
    assert where.returncode == 0 and str(env_dir) in where.stdout, where.stdout + where.stderr
