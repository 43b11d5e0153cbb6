"""clients/python is an installable package: a wheel builds offline, installs into a fresh venv,
and there ``import railguard`` and the ``railguard`` command are the installed ones."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=240, cwd=cwd
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_sdk_builds_installs_and_runs_from_a_fresh_venv(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: building in place would leave build/ in the checkout
    shutil.copytree(ROOT / "clients" / "python", source)
    dist = tmp_path / "dist"
    _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "--wheel-dir", dist, source,
    )  # fmt: skip
    (wheel,) = dist.glob("railguard_sdk-0.1.0-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "railguard/py.typed" in names and "railguard/cli/main.py" in names
    assert not any(n.startswith(("tests/", "railguard/auth/")) for n in names)

    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    _run(python, "-m", "pip", "install", "--no-deps", "--no-index", wheel)
    # the dependencies (httpx, click, pyjwt, websockets) come from this repo's venv, read-only
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    (Path(purelib.strip()) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    where = _run(python, "-c", "import railguard.client, railguard; print(railguard.__file__)")
    assert where.startswith(str(target)), where
    assert _run(target / "bin" / "railguard", "--version").strip() == "railguard, version 0.1.0"
    assert "workspaces" in _run(target / "bin" / "railguard", "--help")
