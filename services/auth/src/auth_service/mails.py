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


def _hours(ttl: dt.timedelta) -> int:
    return int(ttl.total_seconds() // 3600)


def _link_mail(subject: str, ask: str, url: str, otherwise: str) -> tuple[str, str]:
    """A mail that asks for one link to be opened: the ask, the link alone on its line, and what
    happens if the reader ignores it."""
    return subject, f"{ask}:\n\n    {url}\n\n{otherwise}" + _SIGNATURE


def password_reset(public_url: str, token: str, ttl: dt.timedelta) -> tuple[str, str]:
    return _link_mail(
        "Reset your Railguard password",
        "Someone (hopefully you) asked to reset the password of this Railguard account.\n\n"
        f"To choose a new password, open this link within {_minutes(ttl)} minutes",
        link(public_url, "/reset-password", token),
        "The link works once. If you did not ask for this, ignore this mail: your password\n"
        "stays as it is.\n",
    )


def _notice(subject: str, what: str, when: dt.datetime, advice: str) -> tuple[str, str]:
    """A security notice: what happened to the account and when, then what to do if not you."""
    return subject, f"{what} at {when:%Y-%m-%d %H:%M} UTC.\n{advice}" + _SIGNATURE


_RESET_AT_ONCE = "If this was not you, reset your password at once.\n"


def password_was_reset(when: dt.datetime) -> tuple[str, str]:
    return _notice(
        "Your Railguard password was reset",
        "The password of this Railguard account was reset",
        when,
        "Every session was signed out. Your second factor, if you have one, is unchanged.\n\n"
        "If this was not you, reset your password again at once and check your security\n"
        "events.\n",
    )


def password_changed(when: dt.datetime) -> tuple[str, str]:
    return _notice(
        "Your Railguard password was changed",
        "The password of this Railguard account was changed",
        when,
        _RESET_AT_ONCE,
    )


def factor_added(when: dt.datetime) -> tuple[str, str]:
    return _notice(
        "A second factor was added to your Railguard account",
        "An authenticator app (TOTP) was added to this Railguard account",
        when,
        "Sign-ins now ask for its code. " + _RESET_AT_ONCE,
    )


def factor_removed(when: dt.datetime) -> tuple[str, str]:
    return _notice(
        "The second factor of your Railguard account was removed",
        "The authenticator app (TOTP) of this Railguard account was removed",
        when,
        _RESET_AT_ONCE,
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
    return _link_mail(
        "Verify your email address for Railguard",
        "Please confirm that this address belongs to your new Railguard account by\n"
        f"opening this link within {_hours(ttl)} hours",
        link(public_url, "/verify-email", token),
        "If you did not sign up, ignore this mail; the account stays unverified.\n",
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
    return _link_mail(
        "Confirm your new email address for Railguard",
        "A Railguard account asked to use this address from now on. To confirm, open this\n"
        f"link within {_hours(ttl)} hours",
        link(public_url, "/verify-email", token),
        "If you did not ask for this, ignore this mail; nothing changes.\n",
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
