"""Identity lifecycle over HTTPS, reading the .eml files the embedded mail relay writes."""

from __future__ import annotations

import asyncio
import email
import re
import secrets
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from devstack import Stack

from .conftest import PASSWORD, Api, _stack, running_stack

_TOKEN = re.compile(r"token=([A-Za-z0-9_-]{43})")
NEW = "a brand new passphrase here"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"RAILGUARD_LOG_LEVEL": "INFO", "RAILGUARD_MAIL_RELAY_INTERVAL": "0.2"}
    with running_stack(_stack(tmp_path_factory.mktemp("stack"), env=env)) as s:
        yield s


async def _eml(stack: Stack, to: str, subject: str) -> tuple[Path, Message]:
    """The newest .eml file to ``to`` with ``subject`` (the relay runs in the auth process)."""
    for _ in range(100):
        found = []
        for path in sorted((stack.state / "mail").glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes())
            if message["To"] == to and message["Subject"] == subject:
                found.append((path, message))
        if found:
            return found[-1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {subject!r} mail to {to}")


def _token(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    match = _TOKEN.search(payload.decode())
    assert match is not None
    return match.group(1)


async def test_sign_up_verify_reset_and_a_workspace_that_requires_verified_members(
    api: Api, stack: Stack
) -> None:
    address = f"u{secrets.token_hex(4)}@example.com"
    s, user, _ = await api.call("POST", "/v1/users", json={"email": address, "password": PASSWORD})
    assert s == 200 and not user.get("emailVerified")  # false is omitted in JSON
    # the same address again: the same answer; the owner gets a notice instead
    s, again, _ = await api.call("POST", "/v1/users", json={"email": address, "password": PASSWORD})
    assert s == 200 and set(again) == set(user)
    await _eml(stack, address, "Someone tried to sign up with your address")

    tokens = await api.login(address)
    s, ws, _ = await api.call(
        "POST", "/v1/workspaces", tokens["accessToken"], json={"displayName": "V"}
    )
    assert s == 200, ws
    s, ws, _ = await api.call(
        "PATCH",
        f"/v1/{ws['name']}?updateMask=verifiedEmailRequired",
        tokens["accessToken"],
        json={"verifiedEmailRequired": True},
    )
    assert s == 200 and ws["verifiedEmailRequired"] is True, ws
    s, body, _ = await api.call("GET", f"/v1/{ws['name']}", tokens["accessToken"])
    assert (s, body["code"]) == (403, "EMAIL_NOT_VERIFIED")

    path, verify = await _eml(stack, address, "Verify your email address for Railguard")
    token = _token(verify)
    assert f"/verify-email?token={token}" in path.read_text()  # readable, clickable as written
    s, _, _ = await api.call("POST", "/v1/users:verifyEmail", json={"token": token})
    assert s == 200
    s, body, _ = await api.call("POST", "/v1/users:verifyEmail", json={"token": token})
    assert (s, body["code"]) == (400, "INVALID_TOKEN")
    fresh = await api.login(address)  # a new token carries email_verified: true
    s, _, _ = await api.call("GET", f"/v1/{ws['name']}", fresh["accessToken"])
    assert s == 200

    # password reset: same answer for a stranger; the link works once; sessions end
    for who in (address, "nobody@example.com"):
        s, body, _ = await api.call("POST", "/v1/users:requestPasswordReset", json={"email": who})
        assert (s, body) == (200, {})
    _, reset = await _eml(stack, address, "Reset your Railguard password")
    reset_token = _token(reset)
    s, _, _ = await api.call(
        "POST", "/v1/users:resetPassword", json={"token": reset_token, "newPassword": NEW}
    )
    assert s == 200
    s, body, _ = await api.call(
        "POST", "/v1/users:resetPassword", json={"token": reset_token, "newPassword": NEW}
    )
    assert (s, body["code"]) == (400, "INVALID_TOKEN")
    s, _, _ = await api.call(
        "POST", "/v1/auth:refresh", json={"refreshToken": fresh["refreshToken"]}
    )
    assert s == 401
    await api.login(address, NEW)
    await _eml(stack, address, "Your Railguard password was reset")

    # the user's own security log, from the account-level chain (relayed asynchronously)
    s, body, _ = await api.call(
        "POST", "/v1/auth:login", json={"email": address, "password": "wrong password here"}
    )
    assert s == 401
    latest = await api.login(address, NEW)
    wanted = {"user.resetPassword", "user.requestPasswordReset", "user.verifyEmail"}
    for _ in range(100):
        s, log, _ = await api.call("GET", "/v1/users/me/securityEvents", latest["accessToken"])
        assert s == 200, log
        actions = [e["action"] for e in log.get("events", [])]
        if wanted <= set(actions) and actions.count("user.login") >= 4:
            break
        await asyncio.sleep(0.1)
    assert wanted <= set(actions), actions
    logins = [e for e in log["events"] if e["action"] == "user.login"]
    assert any(e.get("outcome") == "AUDIT_OUTCOME_DENIED" for e in logins)  # the failed one
    assert any(
        e.get("metadata", {})
        .get("userAgent", e.get("metadata", {}).get("user_agent", ""))
        .startswith("python-httpx")
        for e in logins
    ), logins
    assert all(e["clientIp"] for e in logins) and any(
        "sessionId" in str(e) or "session_id" in str(e) for e in logins
    )
    assert "user.signUp" in actions  # the duplicate sign-up attempt shows to the owner
    for event in log["events"]:
        assert token not in str(event) and reset_token not in str(event)
        assert address not in str(event)

    # the relay logged each file's path, and no log holds a token or the address
    logs = "".join(p.read_text(errors="replace") for p in stack.state.glob("*.log"))
    assert str(path) in logs
    for secret in (token, reset_token, address):
        assert secret not in logs


async def test_an_invitation_to_an_address_without_an_account(api: Api, stack: Stack) -> None:
    _, owner, _ = await api.user()
    s, ws, _ = await api.call("POST", "/v1/workspaces", owner, json={"displayName": "Acme"})
    assert s == 200, ws
    invitee = f"i{secrets.token_hex(4)}@example.com"
    s, inv, _ = await api.call(
        "POST",
        f"/v1/{ws['name']}/invitations",
        owner,
        json={"email": invitee, "role": "ROLE_ADMIN"},
    )
    assert s == 200 and inv["state"] == "INVITATION_STATE_PENDING", inv
    _, mail = await _eml(stack, invitee, "You are invited to the Railguard workspace Acme")
    token = _token(mail)
    # the invitee signs up with the invited address, then accepts
    await api.sign_up(invitee)
    tokens = await api.login(invitee)
    s, member, _ = await api.call(
        "POST", "/v1/invitations:accept", tokens["accessToken"], json={"token": token}
    )
    assert s == 200 and member["role"] == "ROLE_ADMIN", member
    s, body, _ = await api.call(
        "POST", "/v1/invitations:accept", tokens["accessToken"], json={"token": token}
    )
    assert (s, body["code"]) == (400, "INVALID_TOKEN")
    s, listed, _ = await api.call("GET", f"/v1/{ws['name']}/invitations", owner)
    assert [i["state"] for i in listed["invitations"]] == ["INVITATION_STATE_ACCEPTED"]
    s, got, _ = await api.call("GET", f"/v1/{ws['name']}", tokens["accessToken"])
    assert s == 200 and got["callerRole"] == "ROLE_ADMIN"


async def test_account_deletion_refused_for_a_last_owner_then_done(api: Api, stack: Stack) -> None:
    email, token, _ = await api.user()
    s, ws, _ = await api.call("POST", "/v1/workspaces", token, json={"displayName": "Solo"})
    assert s == 200, ws
    s, body, _ = await api.call("DELETE", "/v1/users/me", token)
    assert body["code"] == "LAST_OWNER" and ws["name"] in body["detail"], body
    other, other_token, _ = await api.user()
    s, _, _ = await api.call(
        "POST",
        f"/v1/{ws['name']}/members",
        token,
        json={"email": other, "role": "ROLE_OWNER"},
    )
    assert s == 200
    s, body, _ = await api.call("DELETE", "/v1/users/me", token)
    assert s == 200, body
    s, body, _ = await api.call(
        "POST", "/v1/auth:login", json={"email": email, "password": PASSWORD}
    )
    assert s == 401
    s, members, _ = await api.call("GET", f"/v1/{ws['name']}/members", other_token)
    assert [m["email"] for m in members["members"]] == [other]
    await _eml(stack, email, "Your Railguard account was deleted")
