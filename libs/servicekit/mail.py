"""Mail: written to a service's outbox inside the change's transaction, then sent by a relay.

A use case builds a :class:`Mail` and calls ``await outbox.record(session, mail)`` before it
commits, so a mail exists exactly when the change that caused it does (a password reset that
rolled back sends nothing). The relay is the audit relay's mechanism,
:class:`servicekit.outbox.OutboxRelay`, over a :class:`MailOutbox` and a sender:

- :class:`SmtpMailSender` (``RAILGUARD_SMTP_URL=smtp://user@host:587``): SMTP through
  ``aiosmtplib`` with STARTTLS required (``smtps://`` for implicit TLS), certificates checked
  against the system store or ``RAILGUARD_SMTP_CA_FILE``; the password comes from the URL or
  ``RAILGUARD_SMTP_PASSWORD``. A server without STARTTLS is refused, never spoken to in clear.
- :class:`FileMailSender` (the embedded default): each mail becomes
  ``<state_dir>/mail/<time>-<id>.eml`` and one log line names the file. Never the body, the
  recipient or a link in the log: bodies carry single-use tokens.

Bodies carry tokens, so the outbox never holds one in clear: the payload is sealed by the
service's key manager (context ``mail/<id>``) and blanked once the mail is sent. Delivery is at
least once: a relay that dies between sending and marking sends again, with the same
``Message-ID`` (the mail id) so receivers can tell.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import os
import ssl
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from sqlalchemy import MetaData, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.db import SqlUnitOfWork
from servicekit.outbox import OutboxRelay, OutboxRepository, outbox_table
from servicekit.settings import Settings

__all__ = [
    "FileMailSender",
    "Mail",
    "MailOutbox",
    "MailingUnitOfWork",
    "MailSealer",
    "SmtpMailSender",
    "mail_relay",
    "mail_sender_from_settings",
]

_log = logging.getLogger("servicekit.mail")

DEFAULT_SENDER = "Railguard <no-reply@railguard.local>"


@dataclass(frozen=True, slots=True)
class Mail:
    """One plain-text mail to one address. ``template`` names its kind (for logs and metrics)."""

    id: str
    to: str = field(repr=False)
    subject: str
    body: str = field(repr=False)
    template: str
    created_at: dt.datetime

    @classmethod
    def new(cls, *, to: str, subject: str, body: str, template: str, now: dt.datetime) -> Mail:
        return cls(str(uuid.uuid4()), to, subject, body, template, now)

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "to": self.to,
                "subject": self.subject,
                "body": self.body,
                "template": self.template,
                "created_at": self.created_at.isoformat(),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, raw: str) -> Mail:
        d = json.loads(raw)
        return cls(
            str(d["id"]),
            str(d["to"]),
            str(d["subject"]),
            str(d["body"]),
            str(d["template"]),
            dt.datetime.fromisoformat(str(d["created_at"])),
        )

    def message(self, sender: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = self.to
        msg["Subject"] = self.subject
        msg["Date"] = email.utils.format_datetime(self.created_at)
        msg["Message-ID"] = f"<{self.id}@railguard>"
        msg["Auto-Submitted"] = "auto-generated"
        # 7bit when possible, so the .eml file reads (and its links click) as written
        msg.set_content(self.body, cte="7bit" if self.body.isascii() else "quoted-printable")
        return msg


class MailSealer(Protocol):
    """Encryption at rest bound to a context; ``servicekit.kms.KeyManager`` has this shape."""

    async def encrypt(self, plaintext: bytes, context: str) -> str: ...
    async def decrypt(self, ciphertext: str, context: str) -> bytes: ...


def _context(mail_id: str) -> str:
    return f"mail/{mail_id}"


class MailOutbox:
    """A service's ``<service>_mail_outbox``: the audit outbox's columns, payloads sealed."""

    def __init__(self, table: Table, sealer: MailSealer | None = None) -> None:
        self.table, self._sealer = table, sealer

    @classmethod
    def define(cls, service: str, metadata: MetaData) -> MailOutbox:
        """Declare ``<service>_mail_outbox`` on the service's metadata (no sealer yet)."""
        return cls(outbox_table(f"{service}_mail_outbox", metadata))

    def with_sealer(self, sealer: MailSealer) -> MailOutbox:
        """The same table with the key manager that seals payloads (the composition root's)."""
        return MailOutbox(self.table, sealer)

    def _require_sealer(self) -> MailSealer:
        if self._sealer is None:
            raise RuntimeError("this MailOutbox has no sealer: use with_sealer()")
        return self._sealer

    async def record(self, session: AsyncSession, mail: Mail) -> None:
        sealed = await self._require_sealer().encrypt(mail.to_json().encode(), _context(mail.id))
        await session.execute(
            self.table.insert().values(
                event_id=mail.id, payload=sealed, created_at=mail.created_at, sent_at=None
            )
        )

    async def unsent(self, session: AsyncSession, limit: int) -> list[Mail]:
        stmt = (
            select(self.table.c.event_id, self.table.c.payload)
            .where(self.table.c.sent_at.is_(None))
            .order_by(self.table.c.seq)
            .limit(limit)
        )
        sealer = self._require_sealer()
        rows = (await session.execute(stmt)).all()
        return [
            Mail.from_json((await sealer.decrypt(r.payload, _context(r.event_id))).decode())
            for r in rows
        ]

    async def mark_sent(self, session: AsyncSession, ids: Sequence[str], now: dt.datetime) -> None:
        # The sealed body is dropped at once: nothing of a sent mail's token stays behind.
        await session.execute(
            update(self.table)
            .where(self.table.c.event_id.in_(list(ids)))
            .values(sent_at=now, payload="")
        )


class MailingUnitOfWork(SqlUnitOfWork):
    """A unit of work whose transaction may also queue mails (``mail``): a mail is sent only if
    what it tells of commits. Subclasses chain ``_bind`` through ``super()``."""

    mail: OutboxRepository[Mail]

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], mail: MailOutbox | None = None
    ) -> None:
        super().__init__(sessions)
        self._mail_outbox = mail

    def _bind(self, session: AsyncSession) -> None:
        super()._bind(session)
        self.mail = OutboxRepository(session, self._mail_outbox)


class FileMailSender:
    """The embedded default: one ``.eml`` file per mail under ``directory`` (created 0700)."""

    def __init__(self, directory: Path, sender: str = DEFAULT_SENDER) -> None:
        self.directory, self._sender = directory, sender

    def path_of(self, mail: Mail) -> Path:
        stamp = mail.created_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S")
        return self.directory / f"{stamp}-{mail.template}-{mail.id}.eml"

    async def append(self, events: Sequence[Mail]) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for mail in events:
            path = self.path_of(mail)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(mail.message(self._sender).as_bytes())
            os.replace(tmp, path)  # a resend after a crash rewrites the same file
            _log.info(
                "mail written",
                extra={"mail_id": mail.id, "template": mail.template, "path": str(path)},
            )


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    implicit_tls: bool = False


def parse_smtp_url(url: str, password: str = "") -> SmtpTarget:
    """``smtp://[user[:password]@]host[:port]`` (STARTTLS, port 587) or ``smtps://`` (465)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("RAILGUARD_SMTP_URL must look like smtp://user@host:587")
    implicit = parts.scheme == "smtps"
    return SmtpTarget(
        host=parts.hostname,
        port=parts.port or (465 if implicit else 587),
        username=unquote(parts.username or ""),
        password=unquote(parts.password or "") or password,
        implicit_tls=implicit,
    )


class SmtpMailSender:
    """SMTP with TLS always: STARTTLS on ``smtp://`` (refused when the server lacks it)."""

    def __init__(
        self,
        target: SmtpTarget,
        tls: ssl.SSLContext,
        sender: str = DEFAULT_SENDER,
        *,
        timeout: float = 15.0,
    ) -> None:
        self._target, self._tls, self._sender, self._timeout = target, tls, sender, timeout

    async def append(self, events: Sequence[Mail]) -> None:
        import aiosmtplib  # imported where used: only an SMTP-configured process needs it

        t = self._target
        client = aiosmtplib.SMTP(
            hostname=t.host,
            port=t.port,
            use_tls=t.implicit_tls,
            start_tls=False,
            tls_context=self._tls,
            timeout=self._timeout,
        )
        async with client:
            if not t.implicit_tls:
                # Required, not opportunistic: without STARTTLS the mail is not sent at all.
                await client.starttls(tls_context=self._tls)
            if t.username:
                await client.login(t.username, t.password)
            for mail in events:
                await client.send_message(mail.message(self._sender))
                _log.info("mail sent", extra={"mail_id": mail.id, "template": mail.template})


def mail_sender_from_settings(settings: Settings) -> SmtpMailSender | FileMailSender:
    """``SMTP_URL`` when set, else ``.eml`` files under ``<state_dir>/mail``."""
    sender = settings.get("MAIL_FROM", DEFAULT_SENDER)
    url = settings.get("SMTP_URL")
    if not url:
        return FileMailSender(settings.state_dir / "mail", sender)
    tls = ssl.create_default_context(cafile=settings.get("SMTP_CA_FILE") or None)
    return SmtpMailSender(parse_smtp_url(url, settings.get("SMTP_PASSWORD")), tls, sender)


def mail_relay(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], outbox: MailOutbox
) -> OutboxRelay[Mail]:
    """The relay that drains ``outbox`` into the configured sender (start it, stop it on exit)."""
    return OutboxRelay(
        sessions,
        outbox,
        mail_sender_from_settings(settings),
        interval=settings.get_float("MAIL_RELAY_INTERVAL", 1.0),
        batch_size=20,
        name="mail-relay",
    )
