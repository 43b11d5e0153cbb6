"""The small adapters: pepper loading, the workspace cache, the usage buffer, the catalogue."""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from keys_service.adapters.contracts import contract_modules, scope_grants
from keys_service.adapters.directory import CachedWorkspaceDirectory
from keys_service.adapters.invalidation import CHANNEL, invalidation_message
from keys_service.adapters.peppers import PEPPER_FILE, load_pepper_ring, parse_peppers
from keys_service.adapters.usage import LastUsedBuffer
from keys_service.domain import (
    KeyEnvironment,
    PepperRing,
    Role,
    ScopePolicy,
    ScopeSet,
    issue_key,
)
from keys_service.usecases import KeyEvent
from servicekit.settings import load_settings

from .fakes_keys import FakeKeys, FakeUow, FakeWorkspaces, minted_key

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---- peppers -------------------------------------------------------------------------------


def test_peppers_from_settings_highest_version_is_current() -> None:
    ring = parse_peppers(f"1:{_b64(b'a' * 32)}, 3:{_b64(b'c' * 32)},2:{_b64(b'b' * 32)}")
    assert ring.current_version == 3
    assert ring.versions == (3, 2, 1)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "x:AAAA",
        f"1:{_b64(b'a' * 32)},1:{_b64(b'b' * 32)}",
        "1:not base64!",
        "1:" + _b64(b"short"),
    ],
)
def test_bad_pepper_settings_are_refused_without_echoing_them(text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_peppers(text)
    secret_part = text.partition(":")[2]
    assert not secret_part or secret_part not in str(err.value)


def _settings(tmp_path: Path, **extra: str) -> object:
    env = {"RAILGUARD_STATE_DIR": str(tmp_path), **{f"RAILGUARD_{k}": v for k, v in extra.items()}}
    return load_settings("keys", env)


def test_the_dev_pepper_file_is_generated_private_and_stable(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = load_pepper_ring(settings)  # type: ignore[arg-type]
    path = tmp_path / PEPPER_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_pepper_ring(settings)  # type: ignore[arg-type]
    key, secret = minted_key(first, key_id="k", workspace_id="w", now=T0)
    assert second.matches(secret, key.secret_hash)


def test_a_readable_pepper_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / PEPPER_FILE
    path.write_text(f"1:{_b64(os.urandom(32))}\n")
    path.chmod(0o644)
    with pytest.raises(PermissionError):
        load_pepper_ring(_settings(tmp_path))  # type: ignore[arg-type]


def test_a_shared_database_requires_configured_peppers(tmp_path: Path) -> None:
    settings = _settings(tmp_path, DATABASE_URL="postgresql+asyncpg://db/keys")
    with pytest.raises(ValueError, match="RAILGUARD_KEYS_PEPPERS"):
        load_pepper_ring(settings)  # type: ignore[arg-type]
    configured = _settings(
        tmp_path, DATABASE_URL="postgresql+asyncpg://db/keys", KEYS_PEPPERS=f"7:{_b64(b'z' * 32)}"
    )
    assert load_pepper_ring(configured).current_version == 7  # type: ignore[arg-type]
    assert not (tmp_path / PEPPER_FILE).exists()


# ---- workspace status cache ---------------------------------------------------------------


async def test_workspace_status_is_cached_for_at_most_one_second() -> None:
    inner = FakeWorkspaces()
    clock = [100.0]
    cached = CachedWorkspaceDirectory(inner, ttl=30.0, timer=lambda: clock[0])  # capped to 1 s
    await cached.status("w")
    clock[0] += 0.9
    await cached.status("w")
    assert inner.calls == 1
    inner.deleted.add("w")
    clock[0] += 0.1
    assert (await cached.status("w")).value == "deleted"
    assert inner.calls == 2
    await cached.role_of("u", "w")
    await cached.role_of("u", "w")
    assert inner.calls == 4  # roles are never cached


# ---- last-used buffer ---------------------------------------------------------------------


async def test_the_usage_buffer_writes_one_update_per_key_per_flush() -> None:
    keys = FakeKeys()
    ring = PepperRing({1: b"p" * 32}, current=1)
    for key_id in ("a", "b"):
        key, _ = issue_key(
            key_id=key_id,
            workspace_id="w",
            name="n",
            environment=KeyEnvironment.LIVE,
            scopes=ScopeSet(["keys:read"]),
            creator_rights=ScopeSet(["keys:read"]),
            created_by="u",
            now=T0,
            ring=ring,
        )
        keys.rows[key_id] = key
    buffer = LastUsedBuffer(lambda: FakeUow(keys), interval=3600)
    for i in range(100):
        buffer.record("a", T0 + timedelta(seconds=i))
    buffer.record("b", T0)
    buffer.record("a", T0)  # older: ignored
    assert await buffer.flush() == 2
    assert sorted(keys.touches) == [("a", T0 + timedelta(seconds=99)), ("b", T0)]
    assert keys.touch_batches == 1  # the whole buffer in one write
    assert await buffer.flush() == 0
    buffer.start()
    buffer.record("b", T0 + timedelta(hours=1))
    await buffer.stop()  # the final flush on shutdown
    assert keys.rows["b"].last_used_at == T0 + timedelta(hours=1)


# ---- the scope catalogue from the contracts -----------------------------------------------


def test_the_catalogue_is_read_from_every_contract() -> None:
    policy = ScopePolicy(scope_grants(contract_modules()))
    scopes = {str(r.scope) for r in policy.rules}
    assert {"keys:read", "keys:write", "workspaces:read", "members:write"} <= scopes
    write = next(r for r in policy.rules if str(r.scope) == "keys:write")
    assert "/railguard.keys.v1.KeysService/CreateApiKey" in write.methods
    assert "members:write" not in policy.rights_of(Role.USER).as_strings()
    assert "members:write" in policy.rights_of(Role.ADMIN).as_strings()
    assert policy.rights_of(Role.NONE).as_strings() == []


# ---- invalidation payload -----------------------------------------------------------------


def test_the_invalidation_message_names_the_key_and_nothing_secret() -> None:
    ring = PepperRing({1: b"p" * 32}, current=1)
    key, secret = minted_key(ring, key_id="k1", workspace_id="w1", now=T0)
    message = invalidation_message(key, KeyEvent.REVOKED)
    assert json.loads(message) == {
        "v": 1,
        "key_id": "k1",
        "workspace_id": "w1",
        "event": "revoked",
        "at": "2026-03-01T00:00:00Z",
    }
    assert secret.reveal() not in message and key.display_prefix not in message
    assert CHANNEL == "railguard:keys:invalidate"
