"""Agent UI deployment PINs: 4 to 8 ASCII digits, not a trivially guessable sequence.

A PIN has little entropy whatever its rules, so its real protection is the attempt limit per
deployment and per IP (see ``throttle``) and argon2id at rest.
"""

from __future__ import annotations

import re

from servicekit.errors import InvalidArgument

MIN_DIGITS = 4
MAX_DIGITS = 8
_PIN = re.compile(r"^[0-9]{4,8}$")
_ASCENDING = "01234567890"
_DESCENDING = "09876543210"


def well_formed_pin(pin: str) -> bool:
    return bool(_PIN.match(pin))


def check_pin(pin: str, field: str = "pin") -> str:
    """The PIN when acceptable, else ``InvalidArgument`` (the message never echoes it)."""
    if not well_formed_pin(pin):
        raise InvalidArgument.field(
            field, f"must be {MIN_DIGITS} to {MAX_DIGITS} digits", reason="INVALID_PIN_FORMAT"
        )
    if len(set(pin)) == 1 or pin in _ASCENDING or pin in _DESCENDING:
        raise InvalidArgument.field(
            field, "is too easy to guess (repeated or sequential digits)", reason="PIN_TOO_WEAK"
        )
    return pin
