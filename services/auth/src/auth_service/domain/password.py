"""The password policy of DESIGN §4: NFKC, 12 to 128 characters, no composition rules.

A password is refused when it is on the bundled list of common/breached passwords (compared
case-insensitively) or when it is, or contains, the user's email address or its local part.
Messages never echo the password.
"""

from __future__ import annotations

import unicodedata
from typing import Protocol

from servicekit.errors import InvalidArgument

MIN_LENGTH = 12
MAX_LENGTH = 128
# Refuse absurd inputs before normalising them; NFKC of a valid password never needs more.
MAX_INPUT_BYTES = 4 * MAX_LENGTH * 4
# A local part shorter than this is not searched for inside the password ("al@x.io" must not
# forbid every password containing "al"); the whole email always is.
MIN_CONTAINED_LOCAL_PART = 3


class Blocklist(Protocol):
    """Common or breached passwords; membership is tested on the case-folded, NFKC form."""

    def __contains__(self, candidate: object) -> bool: ...


def normalize_password(raw: str) -> str:
    """The form that is hashed and verified: NFKC, nothing stripped, nothing truncated."""
    return unicodedata.normalize("NFKC", raw)


def fold(value: str) -> str:
    """The case-insensitive form used for list and email comparisons."""
    return unicodedata.normalize("NFKC", value).casefold()


def check_password(raw: str, email: str, blocklist: Blocklist, field: str = "password") -> str:
    """Apply the policy: the normalised password, or ``InvalidArgument`` on ``field``."""
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
        raise _too_long(field)
    password = normalize_password(raw)
    length = len(password)
    if length < MIN_LENGTH:
        raise InvalidArgument.field(
            field, f"must be at least {MIN_LENGTH} characters", reason="PASSWORD_TOO_SHORT"
        )
    if length > MAX_LENGTH:
        raise _too_long(field)
    folded = fold(password)
    if folded in blocklist:
        raise InvalidArgument.field(
            field, "is too common; choose a less predictable password", reason="PASSWORD_TOO_COMMON"
        )
    if email and _contains_email(folded, fold(email)):
        raise InvalidArgument.field(
            field, "must not contain your email address", reason="PASSWORD_CONTAINS_EMAIL"
        )
    return password


def _contains_email(folded_password: str, folded_email: str) -> bool:
    if folded_email in folded_password:
        return True
    local = folded_email.split("@", 1)[0]
    if local == folded_password:
        return True
    return len(local) >= MIN_CONTAINED_LOCAL_PART and local in folded_password


def _too_long(field: str) -> InvalidArgument:
    return InvalidArgument.field(
        field, f"must be at most {MAX_LENGTH} characters", reason="PASSWORD_TOO_LONG"
    )
