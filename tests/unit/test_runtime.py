"""run_service: one-shot commands beside serve/migrate, and jobs never fail on an unreachable log."""

from __future__ import annotations

from pathlib import Path

import pytest
from servicekit import Settings, Wiring, create_engine, load_settings, relay_now, session_factory
from servicekit.outbox import AuditOutbox
from servicekit.runtime import _main
from sqlalchemy import MetaData


async def _never_built(settings: Settings) -> Wiring:
    raise AssertionError("a command must not build the server")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RAILGUARD_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("RAILGUARD_LOG_LEVEL", "WARNING")
    (tmp_path / "versions").mkdir()
    return tmp_path


async def test_a_command_gets_its_settings_and_arguments_and_sets_the_exit_code(env: Path) -> None:
    seen: list[tuple[str, list[str]]] = []

    async def job(settings: Settings, argv: list[str]) -> int:
        seen.append((settings.service_name, argv))
        return 3

    code = await _main("jobs", _never_built, env / "versions", ["x", "job", "--flag"], {"job": job})
    assert code == 3 and seen == [("jobs", ["--flag"])]
    assert (env / "jobs.db").exists(), "a job migrates first, like a server"


async def test_an_unknown_command_names_the_known_ones(env: Path) -> None:
    async def job(settings: Settings, argv: list[str]) -> int:
        return 0

    with pytest.raises(SystemExit) as exit_:
        await _main("jobs", _never_built, env / "versions", ["x", "nope"], {"job": job})
    assert str(exit_.value) == "usage: python -m jobs_service [serve|migrate|job]"


def test_settings_refuse_values_below_their_minimum() -> None:
    settings = load_settings("keys", {"RAILGUARD_KEYS_RETENTION_DAYS": "0"})
    with pytest.raises(ValueError, match="RAILGUARD_KEYS_RETENTION_DAYS must be at least 1"):
        settings.get_int("KEYS_RETENTION_DAYS", 30, minimum=1)


async def test_relay_now_leaves_events_queued_when_the_log_is_unreachable(env: Path) -> None:
    settings = load_settings("jobs")  # no certificates, no workspaces service
    engine = create_engine(f"sqlite+aiosqlite:///{env / 'outbox.db'}")
    outbox = AuditOutbox.define("jobs", MetaData())
    async with engine.begin() as conn:
        await conn.run_sync(outbox.table.metadata.create_all)
    try:
        await relay_now(settings, session_factory(engine), outbox)  # must not raise
    finally:
        await engine.dispose()
