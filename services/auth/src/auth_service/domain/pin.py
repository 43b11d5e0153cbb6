"""Agent UI deployment PINs: 6 to 8 ASCII digits, not a trivially guessable sequence.

A PIN has little entropy whatever its rules, so its real protection is the attempt limit per
deployment × client IP and per IP, a generous ceiling per deployment (see ``throttle`` and the
auth use cases) and argon2id at rest. Six digits is the floor (issue 8): 4 digits gave 10⁴
guesses to cover, and a PIN set before the floor was raised (4 or 5 digits) no longer verifies.
"""

from __future__ import annotations

import re

from servicekit.errors import InvalidArgument

MIN_DIGITS = 6
MAX_DIGITS = 8
_PIN = re.compile(r"^[0-9]{6,8}$")
_SHORT = re.compile(r"^[0-9]{1,5}$")
_ASCENDING = "01234567890"
_DESCENDING = "09876543210"


def well_formed_pin(pin: str) -> bool:
    return bool(_PIN.match(pin))


def check_pin(pin: str, field: str = "pin") -> str:
    """The PIN when acceptable, else ``InvalidArgument`` (the message never echoes it)."""
    if _SHORT.match(pin):
        raise InvalidArgument.field(
            field, f"must have at least {MIN_DIGITS} digits", reason="PIN_TOO_SHORT"
        )
    if not well_formed_pin(pin):
        raise InvalidArgument.field(
            field, f"must be {MIN_DIGITS} to {MAX_DIGITS} digits", reason="INVALID_PIN_FORMAT"
        )
    if len(set(pin)) == 1 or pin in _ASCENDING or pin in _DESCENDING:
        raise InvalidArgument.field(
            field, "is too easy to guess (repeated or sequential digits)", reason="PIN_TOO_WEAK"
        )
    return pin
