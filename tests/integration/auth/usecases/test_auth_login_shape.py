"""Issue 8: a refused login costs the same database work for a known and an unknown account.

Before, a wrong password for a known account wrote an audit event in its own transaction and an
unknown address wrote nothing: one extra commit, measurable from outside. The statements each
refusal runs are recorded on the real (SQLite) engine and compared.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from servicekit.errors import RailguardError
from sqlalchemy import event

from .conftest import PASSWORD, Env

_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.I)


def _shape(statements: list[str]) -> list[str]:
    """Statements without literal noise: what kind of work ran, on which table, in order."""
    return [re.sub(r"\s+", " ", s.strip())[:80] for s in statements]


async def _statements(env: Env, call: Any) -> list[str]:
    engine = env.sessions.kw["bind"].sync_engine
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with pytest.raises(RailguardError) as err:
            await call
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert err.value.reason in {"INVALID_CREDENTIALS", "LOGIN_THROTTLED"}
    return seen


async def test_a_wrong_password_and_an_unknown_account_do_the_same_writes(env: Env) -> None:
    await env.auth.accounts.sign_up("known@example.com", PASSWORD, "Known")
    known = await _statements(
        env, env.auth.sessions.login("known@example.com", "wrong pw!!", "10.0.0.1")
    )
    unknown = await _statements(
        env, env.auth.sessions.login("ghost@example.com", "wrong pw!!", "10.0.0.2")
    )
    writes = [s for s in known if _WRITE.match(s)]
    assert any("outbox" in s for s in writes)  # the refusal is audited ...
    assert _shape(known) == _shape(unknown)  # ... and an unknown address does exactly the same


async def test_throttled_refusals_do_the_same_writes(env: Env) -> None:
    await env.auth.accounts.sign_up("known@example.com", PASSWORD, "Known")
    for email in ("known@example.com", "ghost@example.com"):
        for i in range(5):
            with pytest.raises(RailguardError):
                await env.auth.sessions.login(email, "wrong pw!!", f"10.1.{len(email)}.{i}")
    env.clock.advance(61)  # past the audit refusal window, still inside the backoff
    known = await _statements(
        env, env.auth.sessions.login("known@example.com", "x" * 12, "10.2.0.1")
    )
    unknown = await _statements(
        env, env.auth.sessions.login("ghost@example.com", "x" * 12, "10.2.0.2")
    )
    assert _shape(known) == _shape(unknown)
    assert any(_WRITE.match(s) and "outbox" in s for s in known)
