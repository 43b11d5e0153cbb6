"""Mailed flows through a real auth server whose mail relay speaks SMTP+STARTTLS to aiosmtpd."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import grpc
import pytest
from aiosmtpd.controller import Controller
from auth_service.__main__ import MIGRATIONS, build
from devstack import free_port
from railguard.auth.v1 import auth_service_pb2 as pb
from testkit import running, test_settings

from ..mail.test_mail_relay import Inbox
from .conftest import AuthServer, error_info

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery staple"
NEW = "a brand new passphrase here"
_TOKEN = re.compile(r"token=([A-Za-z0-9_-]{43})")


@dataclass
class MailedAuth:
    server: AuthServer
    inbox: Inbox

    async def mail_to(self, to: str, subject: str) -> Message:
        """The latest mail to ``to`` with ``subject``, waiting for the relay (bounded)."""
        for _ in range(200):
            found = [m for m in self.inbox.messages if m["To"] == to and m["Subject"] == subject]
            if found:
                return found[-1]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no mail {subject!r} to {to}")


def body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def token_in(message: Message) -> str:
    match = _TOKEN.search(body(message))
    assert match is not None
    return match.group(1)


@pytest.fixture
async def mailed(pki: Path, database_url: str) -> AsyncIterator[MailedAuth]:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki / "workspaces.crt", pki / "workspaces.key")
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True
    )
    controller.start()
    settings = test_settings(
        "auth",
        pki,
        database_url,
        {
            "RAILGUARD_SMTP_URL": f"smtp://127.0.0.1:{port}",
            "RAILGUARD_SMTP_CA_FILE": str(pki / "ca.crt"),
            "RAILGUARD_PUBLIC_URL": "https://railguard.example.org",
            "RAILGUARD_MAIL_RELAY_INTERVAL": "0.1",
        },
    )
    try:
        async with running(settings, build, MIGRATIONS) as server:
            srv = AuthServer(server.port, pki, settings, [])
            try:
                yield MailedAuth(srv, inbox)
            finally:
                for channel in srv.channels:
                    await channel.close()
    finally:
        controller.stop()


async def test_password_reset_end_to_end_over_smtp(mailed: MailedAuth) -> None:
    stub = mailed.server.stub()
    await stub.SignUp(pb.SignUpRequest(email=EMAIL, password=PASSWORD))
    tokens = (await stub.Login(pb.LoginRequest(email=EMAIL, password=PASSWORD))).tokens
    await stub.RequestPasswordReset(pb.RequestPasswordResetRequest(email=EMAIL))
    await stub.RequestPasswordReset(pb.RequestPasswordResetRequest(email="nobody@example.com"))
    reset = await mailed.mail_to(EMAIL, "Reset your Railguard password")
    assert "https://railguard.example.org/reset-password?token=" in body(reset)
    token = token_in(reset)
    results = await asyncio.gather(
        stub.ResetPassword(pb.ResetPasswordRequest(token=token, new_password=NEW)),
        stub.ResetPassword(pb.ResetPasswordRequest(token=token, new_password=NEW + "!")),
        return_exceptions=True,
    )
    losses = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(losses) == 1, results  # exactly one of two concurrent uses wins
    assert error_info(losses[0])[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_TOKEN")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=tokens.refresh_token))
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    await mailed.mail_to(EMAIL, "Your Railguard password was reset")
    assert not [m for m in mailed.inbox.messages if m["To"] == "nobody@example.com"]


async def test_sign_up_verification_and_the_email_verified_claim(mailed: MailedAuth) -> None:
    import jwt

    stub = mailed.server.stub()
    user = await stub.SignUp(pb.SignUpRequest(email=EMAIL, password=PASSWORD))
    stand_in = await stub.SignUp(pb.SignUpRequest(email=EMAIL, password=PASSWORD))
    assert not user.email_verified and stand_in.id != user.id
    await mailed.mail_to(EMAIL, "Someone tried to sign up with your address")
    verify = await mailed.mail_to(EMAIL, "Verify your email address for Railguard")
    token = token_in(verify)
    results = await asyncio.gather(
        stub.VerifyEmail(pb.VerifyEmailRequest(token=token)),
        stub.VerifyEmail(pb.VerifyEmailRequest(token=token)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, grpc.aio.AioRpcError) for r in results) == 1, results
    tokens = (await stub.Login(pb.LoginRequest(email=EMAIL, password=PASSWORD))).tokens
    claims = jwt.decode(tokens.access_token, options={"verify_signature": False})
    assert claims["email_verified"] is True
