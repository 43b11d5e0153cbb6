"""The auth service's mails: plain-text templates, links built from the public URL.

Each mail returns (subject, body): a link mail or a notice is a :class:`LinkMail` or
:class:`Notice` (its wording; the shape is the class's), the others are functions. A link carries
its token in the URL fragment-free query of the public web address (``RAILGUARD_PUBLIC_URL``); the token is the only secret in a body.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

_SIGNATURE = "\n-- \nRailguard. This mail was sent automatically; replies are not read.\n"


def link(public_url: str, path: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{path}?{urlencode({'token': token})}"


@dataclass(frozen=True, slots=True)
class LinkMail:
    """A mail that asks for one link to be opened: the ask with how long the link works, the
    link alone on its line, and what happens if the reader ignores it.

    Called with the public URL, the token and its lifetime; returns (subject, body).
    """

    subject: str
    ask: str  # ends "… within": the lifetime follows, in ``unit``
    unit: Literal["minutes", "hours"]
    path: str
    otherwise: str

    def __call__(self, public_url: str, token: str, ttl: dt.timedelta) -> tuple[str, str]:
        within = int(ttl.total_seconds() // _SECONDS[self.unit])
        url = link(public_url, self.path, token)
        body = f"{self.ask} {within} {self.unit}:\n\n    {url}\n\n{self.otherwise}"
        return self.subject, body + _SIGNATURE


_SECONDS = {"minutes": 60, "hours": 3600}


@dataclass(frozen=True, slots=True)
class Notice:
    """A security notice: what happened to the account and when, then what to do if not you.

    Called with when it happened; returns (subject, body).
    """

    subject: str
    what: str
    advice: str

    def __call__(self, when: dt.datetime) -> tuple[str, str]:
        return (
            self.subject,
            f"{self.what} at {when:%Y-%m-%d %H:%M} UTC.\n{self.advice}" + _SIGNATURE,
        )


_RESET_AT_ONCE = "If this was not you, reset your password at once.\n"

password_reset = LinkMail(
    "Reset your Railguard password",
    "Someone (hopefully you) asked to reset the password of this Railguard account.\n\n"
    "To choose a new password, open this link within",
    "minutes",
    "/reset-password",
    "The link works once. If you did not ask for this, ignore this mail: your password\n"
    "stays as it is.\n",
)

verify_email = LinkMail(
    "Verify your email address for Railguard",
    "Please confirm that this address belongs to your new Railguard account by\n"
    "opening this link within",
    "hours",
    "/verify-email",
    "If you did not sign up, ignore this mail; the account stays unverified.\n",
)

confirm_email_change = LinkMail(
    "Confirm your new email address for Railguard",
    "A Railguard account asked to use this address from now on. To confirm, open this\nlink within",
    "hours",
    "/verify-email",
    "If you did not ask for this, ignore this mail; nothing changes.\n",
)

password_was_reset = Notice(
    "Your Railguard password was reset",
    "The password of this Railguard account was reset",
    "Every session was signed out. Your second factor, if you have one, is unchanged.\n\n"
    "If this was not you, reset your password again at once and check your security\n"
    "events.\n",
)

password_changed = Notice(
    "Your Railguard password was changed",
    "The password of this Railguard account was changed",
    _RESET_AT_ONCE,
)

factor_added = Notice(
    "A second factor was added to your Railguard account",
    "An authenticator app (TOTP) was added to this Railguard account",
    "Sign-ins now ask for its code. " + _RESET_AT_ONCE,
)

factor_removed = Notice(
    "The second factor of your Railguard account was removed",
    "The authenticator app (TOTP) of this Railguard account was removed",
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


def account_exists(public_url: str) -> tuple[str, str]:
    return (
        "Someone tried to sign up with your address",
        "Someone (perhaps you) tried to create a Railguard account with this address, which\n"
        "already has one. Nothing was changed.\n\n"
        f"To sign in, go to {public_url.rstrip('/')}/login. If you forgot your password,\n"
        f"reset it at {public_url.rstrip('/')}/reset-password.\n" + _SIGNATURE,
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
