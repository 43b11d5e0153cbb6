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
