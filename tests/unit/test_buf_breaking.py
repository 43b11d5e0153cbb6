"""``make lint``'s buf breaking compares with the previous commit, so a breaking change fails it.

Each case builds a small git repository holding this checkout's contracts, commits a change on
top and runs ``scripts/buf_breaking.sh`` there with the real buf.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / ".tools" / "node_modules" / ".bin" / "buf"
PROTO = Path("protos/railguard/workspaces/v1/workspaces_service.proto")

if not BUF.exists():
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError("buf is not installed: make lint installs it before make test")
    pytest.skip("buf not installed (make lint installs it)", allow_module_level=True)


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    out = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    )
    return out.stdout


def _run(repo: Path, ci: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BUF": str(BUF), "CI": "true" if ci else ""}
    env.pop("BUF_BREAKING_AGAINST", None)
    return subprocess.run(
        ["bash", str(repo / "scripts" / "buf_breaking.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("protos", "third_party"):
        shutil.copytree(ROOT / name, repo / name)
    shutil.copy(ROOT / "buf.yaml", repo / "buf.yaml")
    (repo / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "buf_breaking.sh", repo / "scripts" / "buf_breaking.sh")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "contracts")
    return repo


def _edit(repo: Path, old: str, new: str) -> None:
    path = repo / PROTO
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    _git(repo, "commit", "-q", "-am", "change")


def test_a_deleted_field_fails_against_the_previous_commit(repo: Path) -> None:
    _edit(repo, "  // A page token from a previous call.\n  string page_token = 3;\n", "")
    result = _run(repo)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "HEAD~1" in result.stdout
    assert "deleted" in (result.stdout + result.stderr).lower()


def test_a_compatible_change_passes(repo: Path) -> None:
    _edit(repo, "// The request of ListAuditEvents.", "// The request of ListAuditEvents (paged).")
    result = _run(repo)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_first_commit_has_nothing_to_compare(repo: Path) -> None:
    result = _run(repo)
    assert result.returncode == 0
    assert "first commit" in result.stdout


def test_a_shallow_clone_is_deepened_or_fails_loudly_in_ci(repo: Path, tmp_path: Path) -> None:
    _edit(repo, "  // A page token from a previous call.\n  string page_token = 3;\n", "")
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow)], check=True
    )
    deepened = _run(shallow, ci=True)  # the origin is reachable: one more commit is fetched
    assert deepened.returncode != 0 and "HEAD~1" in deepened.stdout, deepened.stderr
    cut_off = tmp_path / "cut-off"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(cut_off)], check=True
    )
    _git(cut_off, "remote", "remove", "origin")
    failed = _run(cut_off, ci=True)
    assert failed.returncode == 1
    assert "shallow clone" in failed.stderr
    local = _run(cut_off, ci=False)
    assert local.returncode == 0 and "SKIPPED" in local.stderr
