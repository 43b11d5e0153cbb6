"""The mail relay against a real SMTP server (aiosmtpd on a free loopback port) and on files."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import logging
import ssl
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from devstack import free_port
from servicekit import create_engine, session_factory
from servicekit.db import dispose_engine
from servicekit.mail import (
    FileMailSender,
    Mail,
    MailOutbox,
    SmtpMailSender,
    mail_sender_from_settings,
    parse_smtp_url,
)
from sqlalchemy import MetaData, select
from testkit import test_settings

TOKEN = "tok3n-that-must-not-be-logged-AAAAAAAAAAAAAAAAA"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _authenticator(
    server: object, session: object, envelope: object, mechanism: str, data: object
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"relay", b"s3cret")
    return AuthResult(success=ok)


def _mail(body: str = f"link: https://x/reset?token={TOKEN}") -> Mail:
    return Mail.new(
        to="alice@example.com",
        subject="Reset your Railguard password",
        body=body,
        template="password-reset",
        now=dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC),
    )


@pytest.fixture
def smtp_server(pki: Path) -> Iterator[tuple[Inbox, int]]:
    """STARTTLS required (certificate from the dev CA), AUTH only after TLS."""
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki / "workspaces.crt", pki / "workspaces.key")
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        require_starttls=True,
        auth_require_tls=True,
        authenticator=_authenticator,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _client_tls(pki: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki / "ca.crt"))


async def test_smtp_delivers_over_starttls_with_the_dev_ca(
    smtp_server: tuple[Inbox, int], pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port = smtp_server
    target = parse_smtp_url(f"smtp://relay@127.0.0.1:{port}", password="s3cret")
    sender = SmtpMailSender(target, _client_tls(pki), "Railguard <no-reply@example.org>")
    mail = _mail()
    with caplog.at_level(logging.DEBUG):
        await sender.append([mail])
    (message,) = inbox.messages
    assert message["Subject"] == "Reset your Railguard password"
    assert message["To"] == "alice@example.com"
    assert message["Message-ID"] == f"<{mail.id}@railguard>"
    assert TOKEN in message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert inbox.envelopes[0].rcpt_tos == ["alice@example.com"]
    ours = [r for r in caplog.records if not r.name.startswith("mail.log")]  # not the server's
    assert any(r.getMessage() == "mail sent" for r in ours)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in ours)
    assert TOKEN not in logged and "alice@example.com" not in logged


async def test_an_untrusted_certificate_is_refused(
    smtp_server: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, port = smtp_server
    sender = SmtpMailSender(
        parse_smtp_url(f"smtp://relay:s3cret@127.0.0.1:{port}"), ssl.create_default_context()
    )
    with pytest.raises(Exception, match="(?i)certificate"):
        await sender.append([_mail()])
    assert inbox.messages == []


async def test_a_server_without_starttls_is_never_spoken_to_in_clear(pki: Path) -> None:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)  # no TLS at all
    controller.start()
    try:
        sender = SmtpMailSender(parse_smtp_url(f"smtp://127.0.0.1:{port}"), _client_tls(pki))
        with pytest.raises(Exception, match="(?i)starttls|tls"):
            await sender.append([_mail()])
    finally:
        controller.stop()
    assert inbox.messages == []


def test_smtp_urls() -> None:
    t = parse_smtp_url("smtp://user%40corp@mail.example.org")
    assert (t.host, t.port, t.username, t.implicit_tls) == (
        "mail.example.org",
        587,
        "user@corp",
        False,
    )
    assert parse_smtp_url("smtps://mail.example.org").port == 465
    assert "pw" not in repr(parse_smtp_url("smtp://u:pw@h:25"))
    with pytest.raises(ValueError):
        parse_smtp_url("http://mail.example.org")


async def test_the_embedded_default_writes_eml_files_and_logs_only_the_path(
    tmp_path: Path, pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = test_settings("auth", pki, "sqlite+aiosqlite://")
    sender = mail_sender_from_settings(settings)
    assert isinstance(sender, FileMailSender)
    sender = FileMailSender(tmp_path / "mail")
    mail = _mail()
    with caplog.at_level(logging.INFO, logger="servicekit.mail"):
        await sender.append([mail])
        await sender.append([mail])  # a resend after a crash rewrites the same file
    (path,) = list((tmp_path / "mail").glob("*.eml"))
    assert path == sender.path_of(mail) and path.stat().st_mode & 0o077 == 0
    parsed = email.message_from_bytes(path.read_bytes())
    assert parsed["To"] == "alice@example.com" and TOKEN in path.read_text()
    records = [r for r in caplog.records if r.name == "servicekit.mail"]
    assert records and all(getattr(r, "path", "") == str(path) for r in records)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in records)
    assert TOKEN not in logged and "alice@example.com" not in logged


class _XorSealer:
    async def encrypt(self, plaintext: bytes, context: str) -> str:
        return context + ":" + plaintext[::-1].hex()

    async def decrypt(self, ciphertext: str, context: str) -> bytes:
        prefix, _, body = ciphertext.rpartition(":")
        assert prefix == context
        return bytes.fromhex(body)[::-1]


async def test_the_outbox_never_holds_a_body_in_clear_and_blanks_it_once_sent(
    tmp_path: Path,
) -> None:
    from servicekit.outbox import OutboxRelay

    metadata = MetaData()
    outbox = MailOutbox.define("t", metadata).with_sealer(_XorSealer())
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    mail = _mail()
    async with sessions() as session:
        await outbox.record(session, mail)
        await session.commit()
        raw = (await session.execute(select(outbox.table.c.payload))).scalar_one()
    assert TOKEN not in raw and "alice" not in raw
    sender = FileMailSender(tmp_path / "mail")
    relay = OutboxRelay(sessions, outbox, sender, name="mail-relay")
    assert await relay.drain() == 1
    async with sessions() as session:
        row = (await session.execute(select(outbox.table))).one()
    assert row.payload == "" and row.sent_at is not None
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
    await asyncio.sleep(0)
    await dispose_engine(engine)


async def test_a_mail_queued_while_smtp_is_down_is_sent_once_it_is_back(
    tmp_path: Path, pki: Path
) -> None:
    """SMTP down: the relay fails, the mail stays queued (sealed); SMTP back: it goes out once."""
    from servicekit.outbox import OutboxRelay

    metadata = MetaData()
    outbox = MailOutbox.define("t", metadata).with_sealer(_XorSealer())
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    async with sessions() as session:
        await outbox.record(session, _mail())
        await session.commit()
    port = free_port()
    target = parse_smtp_url(f"smtp://relay@127.0.0.1:{port}", password="s3cret")
    sender = SmtpMailSender(target, _client_tls(pki), timeout=2.0)
    relay = OutboxRelay(sessions, outbox, sender, name="mail-relay")
    with pytest.raises(Exception):  # noqa: B017 - whatever the client raises, nothing is lost
        await relay.drain()
    async with sessions() as session:
        row = (await session.execute(select(outbox.table))).one()
    assert row.sent_at is None and row.payload != ""
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki / "workspaces.crt", pki / "workspaces.key")
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        require_starttls=True,
        auth_require_tls=True,
        authenticator=_authenticator,
    )
    controller.start()
    try:
        assert await relay.drain() == 1
        assert await relay.drain() == 0
    finally:
        controller.stop()
    assert len(inbox.messages) == 1 and inbox.messages[0]["To"] == "alice@example.com"
    await dispose_engine(engine)
