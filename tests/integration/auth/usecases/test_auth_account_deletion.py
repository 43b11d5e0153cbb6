"""Account deletion by the user: step-up, the last-Owner rule, sessions end, a tombstone later."""

from __future__ import annotations

import pytest
from auth_service.adapters.tables import SessionRow, UserRow
from auth_service.domain import Assurance
from auth_service.usecases import TokenPair
from servicekit.errors import FailedPrecondition, NotFound, PermissionDenied, Unauthenticated
from sqlalchemy import select

from .conftest import PASSWORD, Env

EMAIL = "alice@example.com"


def _recent(env: Env) -> Assurance:
    return Assurance(auth_time=int(env.clock.now().timestamp()))


async def _user(env: Env) -> tuple[str, TokenPair]:
    user = await env.auth.accounts.sign_up(EMAIL, PASSWORD, "Alice")
    pair = await env.auth.sessions.login(EMAIL, PASSWORD)
    assert isinstance(pair, TokenPair)
    return user.id, pair


async def test_deletion_needs_a_recent_login(env: Env) -> None:
    user_id, _ = await _user(env)
    with pytest.raises(PermissionDenied) as err:
        await env.auth.accounts.delete_account(user_id, Assurance(auth_time=1))
    assert err.value.reason == "STEP_UP_REQUIRED"


async def test_the_last_owner_is_refused_and_told_which_workspaces(env: Env) -> None:
    user_id, _ = await _user(env)
    env.memberships.rows = [
        (user_id, "acme", "owner"),
        (user_id, "shared", "owner"),
        ("bob", "shared", "owner"),
        (user_id, "other", "user"),
    ]
    with pytest.raises(FailedPrecondition) as err:
        await env.auth.accounts.delete_account(user_id, _recent(env))
    assert err.value.reason == "LAST_OWNER"
    assert "Acme (workspaces/acme)" in str(err.value) and "shared" not in str(err.value)
    assert err.value.metadata["workspaces"] == "workspaces/acme"
    assert len(env.memberships.rows) == 4  # nothing removed
    assert await env.auth.accounts.current_user(user_id)


async def test_deletion_ends_sessions_removes_memberships_and_mails(env: Env) -> None:
    user_id, pair = await _user(env)
    env.memberships.rows = [(user_id, "shared", "owner"), ("bob", "shared", "owner")]
    await env.auth.accounts.delete_account(user_id, _recent(env))
    assert env.memberships.rows == [("bob", "shared", "owner")]
    with pytest.raises(Unauthenticated):
        await env.auth.refresh.refresh(pair.refresh_token)
    with pytest.raises(Unauthenticated):
        await env.auth.sessions.login(EMAIL, PASSWORD)
    with pytest.raises(NotFound):
        await env.auth.accounts.current_user(user_id)
    assert [m for m in await env.mails(EMAIL) if m.template == "account-deleted"]
    (event,) = await env.audit("user.delete")
    assert event.metadata["by"] == "self" and EMAIL not in event.to_json()


async def test_personal_data_is_erased_after_the_window_leaving_a_tombstone(env: Env) -> None:
    user_id, _ = await _user(env)
    await env.auth.accounts.delete_account(user_id, _recent(env))
    assert await env.auth.accounts.purge_deleted_accounts() == 0  # still within the window
    env.clock.advance(days=31)
    assert await env.auth.accounts.purge_deleted_accounts() == 1
    async with env.sessions() as session:
        row = (await session.execute(select(UserRow).where(UserRow.id == user_id))).scalar_one()
        left = (await session.execute(select(SessionRow))).scalars().all()
    assert row.email == f"{user_id}@deleted.invalid" and row.display_name == ""
    assert row.purged_at is not None and left == []
    assert [e.target for e in await env.audit("user.purge")] == [f"users/{user_id}"]
    # the address is free again
    again = await env.auth.accounts.sign_up(EMAIL, PASSWORD, "")
    assert again.id != user_id
    assert await env.auth.accounts.current_user(again.id)
