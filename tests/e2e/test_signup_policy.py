"""An invite-only deployment over HTTPS: strangers cannot sign up, invited addresses can.

The operator's own account is made while sign-up is open; the same state folder is then served
again with RAILGUARD_SIGNUP_POLICY=invite-only (how an operator would close sign-up).
"""

from __future__ import annotations

import dataclasses
import secrets
from pathlib import Path

from devstack import Stack

from .conftest import PASSWORD, _stack, api_for, running_stack
from .test_identity import _eml, _token


async def test_invite_only_after_the_operator_signed_up(tmp_path: Path) -> None:
    env = {"RAILGUARD_MAIL_RELAY_INTERVAL": "0.2"}
    first: Stack = _stack(tmp_path, env=env)
    owner = f"o{secrets.token_hex(4)}@example.com"
    invitee = f"i{secrets.token_hex(4)}@example.com"
    with running_stack(first):
        async with api_for(first) as api:
            await api.sign_up(owner)
            tokens = await api.login(owner)
            s, ws, _ = await api.call(
                "POST", "/v1/workspaces", tokens["accessToken"], json={"displayName": "Corp"}
            )
            assert s == 200, ws
            s, inv, _ = await api.call(
                "POST",
                f"/v1/{ws['name']}/invitations",
                tokens["accessToken"],
                json={"email": invitee, "role": "ROLE_USER"},
            )
            assert s == 200, inv
            _, mail = await _eml(first, invitee, "You are invited to the Railguard workspace Corp")
    closed = dataclasses.replace(
        first,
        env={**env, "RAILGUARD_SIGNUP_POLICY": "invite-only"},
        processes={},
        _logs=[],
        edge_ports=[],
    )
    with running_stack(closed):
        async with api_for(closed) as api:
            stranger = f"s{secrets.token_hex(4)}@example.com"
            s, body, _ = await api.call(
                "POST", "/v1/users", json={"email": stranger, "password": PASSWORD}
            )
            assert (s, body["code"]) == (403, "SIGNUP_NOT_ALLOWED"), body
            await api.sign_up(invitee)  # invited: allowed
            tokens = await api.login(invitee)
            s, member, _ = await api.call(
                "POST",
                "/v1/invitations:accept",
                tokens["accessToken"],
                json={"token": _token(mail)},
            )
            assert s == 200 and member["email"] == invitee, member
