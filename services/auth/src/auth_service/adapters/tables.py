"""The auth service's tables (its database is its own; no other service reads it)."""

from __future__ import annotations

import datetime as dt

from servicekit.db import UtcDateTime
from sqlalchemy import ForeignKey, Index, String, Text
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
