"""The auth service's tables (its database is its own; no other service reads it)."""

from __future__ import annotations

import datetime as dt

from servicekit.changefeed import ChangeLog
from servicekit.db import UtcDateTime
from servicekit.lifecycle import LifecycleStore
from servicekit.mail import MailOutbox
from servicekit.outbox import AuditOutbox
from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Unique across deleted users too: an email stays taken until the account is purged.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # When the current address was proven by a verification link (auth_0005); NULL until then.
    email_verified_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # When a deleted account's personal data was erased, leaving this row as a tombstone
    # (auth_0006): the id stays, so audit references to users/{id} stay valid.
    purged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_used_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    idle_expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    absolute_expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    auth_time: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    client_ip: Mapped[str] = mapped_column(String(64))
    aal: Mapped[str] = mapped_column(String(8))
    amr: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoke_reason: Mapped[str] = mapped_column(String(32))

    __table_args__ = (Index("ix_sessions_user_created", "user_id", "created_at"),)


class RefreshTokenRow(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    rotated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    child_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sealed_child: Mapped[str | None] = mapped_column(Text, nullable=True)


class SigningKeyRow(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[str] = mapped_column(String(64))
    sealed_private_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    activated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    verify_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class TotpFactorRow(Base):
    __tablename__ = "totp_factors"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # One factor per user: pending (unconfirmed) or confirmed.
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    sealed_secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_step: Mapped[int] = mapped_column(BigInteger)


class RecoveryCodeRow(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (UniqueConstraint("user_id", "code_hash", name="uq_recovery_codes_user_hash"),)


class MfaChallengeRow(Base):
    __tablename__ = "mfa_challenges"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(Integer)
    consumed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    client_ip: Mapped[str] = mapped_column(String(64))


class ThrottleRow(Base):
    __tablename__ = "throttle_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    hour_start: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    hour_failures: Mapped[int] = mapped_column(Integer)
    blocked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    version: Mapped[int] = mapped_column(Integer)


class AuthSecretRow(Base):
    """Service secrets sealed by the key manager (e.g. the recovery-code pepper)."""

    __tablename__ = "auth_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    sealed_value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class DeploymentPinRow(Base):
    __tablename__ = "deployment_pins"

    workspace_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pin_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


# Security events (DESIGN §4), written in the same transaction as the change and relayed to the
# workspace audit log by ``AuditRelay`` (migration ``auth_0003``).
AUDIT_OUTBOX = AuditOutbox.define("auth", Base.metadata)
# what this service has heard of each workspace's life (servicekit.lifecycle, migration auth_0004)
LIFECYCLE = LifecycleStore.define(Base.metadata)


class AccountTokenRow(Base):
    """Single-use tokens mailed to a user (password reset, email verification, …), auth_0005.

    Only a keyed hash of a token is stored (HMAC-SHA256 under a sealed pepper); ``email`` is the
    address the token was sent to (the new one, for an email change)."""

    __tablename__ = "account_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    consumed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (Index("ix_account_tokens_user_purpose", "user_id", "purpose"),)


# Mails (reset links, verification links, notices), written in the change's transaction with
# their bodies sealed, and sent by the mail relay (servicekit.mail, migration auth_0005).
MAIL_OUTBOX = MailOutbox.define("auth", Base.metadata)
# what changed, for the edge's Watch (servicekit.changefeed), written in each change's transaction
CHANGE_LOG = ChangeLog.define("auth", Base.metadata)
