"""DESIGN §4 for the auth service through a real server (production composition root, mTLS,
SQLite and PostgreSQL): RPCs write their events to ``auth_audit_outbox`` with the request id and
client IP of the call, in a form ``AppendAuditEvents`` accepts, with no secret in them; the relay
is started by ``build()`` and stopped with the server (the workspaces peer is absent here, so the
events stay queued)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from auth_service.__main__ import MIGRATIONS, build
from railguard.access.v1 import access_pb2
from railguard.auth.v1 import auth_service_pb2 as pb
from servicekit import AuditEvent, Outcome, create_engine
from servicekit.audit_grpc import event_from_proto, event_to_proto
from servicekit.db import dispose_engine
from sqlalchemy import text
from testkit import running, test_settings

from .conftest import AuthServer, as_token, as_user

PASSWORD = "correct horse battery staple"
PIN = "73914062"
WRONG_PIN = "51862093"


async def _events(server: AuthServer) -> tuple[list[AuditEvent], list[Any]]:
    engine = create_engine(server.settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = list(
                (
                    await conn.execute(
                        text("SELECT payload, sent_at FROM auth_audit_outbox ORDER BY seq")
                    )
                ).all()
            )
    finally:
        await dispose_engine(engine)
    return [AuditEvent.from_dict(json.loads(r.payload)) for r in rows], [r.sent_at for r in rows]


def _claims(tokens: pb.TokenPair) -> dict[str, Any]:
    return jwt.decode(tokens.access_token, options={"verify_signature": False})


async def _fails(call: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await call


async def test_rpcs_record_their_events_without_secrets(auth_server: AuthServer) -> None:
    stub = auth_server.stub()
    ip = as_user("", client_ip="198.51.100.23")
    user = await stub.SignUp(
        pb.SignUpRequest(email="rpc-audit@example.com", password=PASSWORD), metadata=ip
    )
    tokens = (
        await stub.Login(
            pb.LoginRequest(email="rpc-audit@example.com", password=PASSWORD), metadata=ip
        )
    ).tokens
    for _ in range(2):
        await _fails(
            stub.Login(
                pb.LoginRequest(email="rpc-audit@example.com", password="wrong password!"),
                metadata=ip,
            )
        )
        await _fails(
            stub.Login(
                pb.LoginRequest(email="stranger@example.com", password="wrong password!"),
                metadata=ip,
            )
        )
    rotated = (
        await stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=tokens.refresh_token))
    ).tokens
    second = (
        await stub.Login(pb.LoginRequest(email="rpc-audit@example.com", password=PASSWORD))
    ).tokens
    await stub.Logout(pb.LogoutRequest(), metadata=as_token(_claims(second)))
    admin = as_user("admin7", "s1", workspace_id="w1", role=access_pb2.ROLE_ADMIN, aal="aal2")
    pin_name = "workspaces/w1/deployments/d1/pin"
    await stub.SetDeploymentPin(pb.SetDeploymentPinRequest(name=pin_name, pin=PIN), metadata=admin)
    for deployment in ("d1", "d1", "d404"):
        await _fails(
            stub.VerifyDeploymentPin(
                pb.VerifyDeploymentPinRequest(
                    name=f"workspaces/w1/deployments/{deployment}", pin=WRONG_PIN
                )
            )
        )
    await stub.ClearDeploymentPin(pb.ClearDeploymentPinRequest(name=pin_name), metadata=admin)

    events, _ = await _events(auth_server)
    mine = [e for e in events if e.action != "signingKey.rotate"]
    summary = [(e.action, e.outcome, e.metadata.get("reason", "")) for e in mine]
    assert summary == [
        ("user.signUp", Outcome.SUCCESS, ""),
        ("user.login", Outcome.SUCCESS, ""),
        ("user.login", Outcome.DENIED, "INVALID_PASSWORD"),  # once: rate-limited
        # the stranger costs the same one event as a known account, naming no one (issue 8)
        ("user.login", Outcome.DENIED, "UNKNOWN_ACCOUNT"),
        ("user.login", Outcome.SUCCESS, ""),
        ("user.logout", Outcome.SUCCESS, ""),
        ("deploymentPin.set", Outcome.SUCCESS, ""),
        ("deploymentPin.verify", Outcome.DENIED, "INVALID_PIN"),  # once; nothing for d404
        ("deploymentPin.clear", Outcome.SUCCESS, ""),
    ]
    # calls with principal metadata carry testkit's request id; the others get a fresh one
    assert [e.request_id == "test-request" for e in mine] == [1, 1, 1, 1, 0, 1, 1, 0, 1]
    assert all("stranger" not in e.to_json() for e in mine)
    assert all(e.request_id for e in mine)
    assert [e.client_ip for e in mine[:4]] == ["198.51.100.23"] * 4
    assert [e.actor for e in mine[:6]] == [f"user:{user.id}"] * 3 + ["anonymous"] + [
        f"user:{user.id}"
    ] * 2
    assert [e.actor for e in mine[6:]] == ["user:admin7", "system", "user:admin7"]
    assert [e.workspace_id for e in mine] == [""] * 6 + ["w1"] * 3
    # the form AppendAuditEvents parses (and re-checks for secrets)
    assert [event_from_proto(event_to_proto(e)) for e in events] == events

    dump = "\n".join(e.to_json() for e in events)
    for value in (
        PASSWORD,
        "wrong password!",
        PIN,
        WRONG_PIN,
        tokens.access_token,
        tokens.refresh_token,
        rotated.access_token,
        rotated.refresh_token,
        second.access_token,
        second.refresh_token,
        "stranger",
    ):
        assert value not in dump
    assert "eyJ" not in dump


async def test_refresh_token_reuse_is_recorded_in_the_revoking_transaction(
    pki: Path, database_url: str
) -> None:
    extra = {"RAILGUARD_AUTH_REFRESH_GRACE_SECONDS": "0"}  # any replay is a reuse
    settings = test_settings("auth", pki, database_url, extra)
    async with running(settings, build, MIGRATIONS) as running_server:
        server = AuthServer(running_server.port, pki, settings, [])
        try:
            stub = server.stub()
            await stub.SignUp(pb.SignUpRequest(email="reuse@example.com", password=PASSWORD))
            tokens = (
                await stub.Login(pb.LoginRequest(email="reuse@example.com", password=PASSWORD))
            ).tokens
            await stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=tokens.refresh_token))
            for _ in range(2):  # the second finds the session revoked: no second event
                await _fails(
                    stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=tokens.refresh_token))
                )
            events, _ = await _events(server)
        finally:
            for channel in server.channels:
                await channel.close()
    reuse = [e for e in events if e.action == "refreshToken.reuse"]
    assert len(reuse) == 1 and reuse[0].outcome is Outcome.DENIED
    assert reuse[0].metadata["session_id"] == _claims(tokens)["sid"]
    assert reuse[0].request_id and reuse[0].actor == "system"
    assert tokens.refresh_token not in reuse[0].to_json()
