"""The auth service's mails: plain-text templates, links built from the public URL.

Each function returns (subject, body). A link carries its token in the URL fragment-free query
of the public web address (``RAILGUARD_PUBLIC_URL``); the token is the only secret in a body.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

_SIGNATURE = "\n-- \nRailguard. This mail was sent automatically; replies are not read.\n"


def link(public_url: str, path: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{path}?{urlencode({'token': token})}"


def _minutes(ttl: dt.timedelta) -> int:
    return int(ttl.total_seconds() // 60)


def password_reset(public_url: str, token: str, ttl: dt.timedelta) -> tuple[str, str]:
    return (
        "Reset your Railguard password",
        "Someone (hopefully you) asked to reset the password of this Railguard account.\n\n"
        f"To choose a new password, open this link within {_minutes(ttl)} minutes:\n\n"
        f"    {link(public_url, '/reset-password', token)}\n\n"
        "The link works once. If you did not ask for this, ignore this mail: your password\n"
        "stays as it is.\n" + _SIGNATURE,
    )


def password_was_reset(when: dt.datetime) -> tuple[str, str]:
    return (
        "Your Railguard password was reset",
        f"The password of this Railguard account was reset at {when:%Y-%m-%d %H:%M} UTC.\n"
        "Every session was signed out. Your second factor, if you have one, is unchanged.\n\n"
        "If this was not you, reset your password again at once and check your security\n"
        "events.\n" + _SIGNATURE,
    )


def password_changed(when: dt.datetime) -> tuple[str, str]:
    return (
        "Your Railguard password was changed",
        f"The password of this Railguard account was changed at {when:%Y-%m-%d %H:%M} UTC.\n"
        "If this was not you, reset your password at once.\n" + _SIGNATURE,
    )


def factor_added(when: dt.datetime) -> tuple[str, str]:
    return (
        "A second factor was added to your Railguard account",
        f"An authenticator app (TOTP) was added to this Railguard account at "
        f"{when:%Y-%m-%d %H:%M} UTC.\nSign-ins now ask for its code. If this was not you, "
        "reset your password at once.\n" + _SIGNATURE,
    )


def factor_removed(when: dt.datetime) -> tuple[str, str]:
    return (
        "The second factor of your Railguard account was removed",
        f"The authenticator app (TOTP) of this Railguard account was removed at "
        f"{when:%Y-%m-%d %H:%M} UTC.\nIf this was not you, reset your password at once.\n"
        + _SIGNATURE,
    )


def account_deleted(when: dt.datetime, retention_days: int) -> tuple[str, str]:
    return (
        "Your Railguard account was deleted",
        f"This Railguard account was deleted at {when:%Y-%m-%d %H:%M} UTC: every session was\n"
        "signed out and every workspace membership removed. Its personal data is erased\n"
        f"after {retention_days} days.\n\n"
        "If this was not you, contact your workspace administrator at once.\n" + _SIGNATURE,
    )


def verify_email(public_url: str, token: str, ttl: dt.timedelta) -> tuple[str, str]:
    return (
        "Verify your email address for Railguard",
        "Please confirm that this address belongs to your new Railguard account by\n"
        f"opening this link within {int(ttl.total_seconds() // 3600)} hours:\n\n"
        f"    {link(public_url, '/verify-email', token)}\n\n"
        "If you did not sign up, ignore this mail; the account stays unverified.\n" + _SIGNATURE,
    )


def account_exists(public_url: str) -> tuple[str, str]:
    return (
        "Someone tried to sign up with your address",
        "Someone (perhaps you) tried to create a Railguard account with this address, which\n"
        "already has one. Nothing was changed.\n\n"
        f"To sign in, go to {public_url.rstrip('/')}/login. If you forgot your password,\n"
        f"reset it at {public_url.rstrip('/')}/reset-password.\n" + _SIGNATURE,
    )


def confirm_email_change(public_url: str, token: str, ttl: dt.timedelta) -> tuple[str, str]:
    return (
        "Confirm your new email address for Railguard",
        "A Railguard account asked to use this address from now on. To confirm, open this\n"
        f"link within {int(ttl.total_seconds() // 3600)} hours:\n\n"
        f"    {link(public_url, '/verify-email', token)}\n\n"
        "If you did not ask for this, ignore this mail; nothing changes.\n" + _SIGNATURE,
    )


def email_changed(new_address: str, when: dt.datetime) -> tuple[str, str]:
    return (
        "Your Railguard email address was changed",
        f"At {when:%Y-%m-%d %H:%M} UTC the email address of your Railguard account was changed\n"
        f"to {_masked(new_address)}. This address no longer signs in.\n\n"
        "If this was not you, contact your workspace administrator at once: the account\n"
        "now signs in with the new address.\n" + _SIGNATURE,
    )


def _masked(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"
