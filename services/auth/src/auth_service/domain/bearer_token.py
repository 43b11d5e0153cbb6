"""Opaque bearer tokens of 256 bits whose prefix names their kind (refresh ``rgr_``, MFA
challenge ``rgm_``): minted, checked for form before any lookup, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BearerTokenFormat:
    """One kind of prefixed bearer token; a plain SHA-256 suffices (the token has 256 bits)."""

    prefix: str
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = re.compile(rf"^{re.escape(self.prefix)}[A-Za-z0-9_-]{{43}}$")
        object.__setattr__(self, "_pattern", pattern)

    def new(self) -> str:
        return self.prefix + secrets.token_urlsafe(32)

    def well_formed(self, token: str) -> bool:
        """Checked before any database read, so junk never costs a query."""
        return bool(self._pattern.match(token))

    def hash(self, token: str) -> str:
        """What is stored and looked up: the hex SHA-256."""
        return hashlib.sha256(token.encode()).hexdigest()
