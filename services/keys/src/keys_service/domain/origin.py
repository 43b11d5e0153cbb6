"""Per-key browser origin allowlists (the ``Origin`` request header).

An origin is exactly ``scheme://host[:port]`` (RFC 6454). Entries are normalised the way browsers
serialise the header: lower-case scheme and host, default port (80/443) dropped, IPv6 literals
compressed; a single trailing ``/`` is tolerated because people paste it.

Decisions:

* **No wildcards.** ``https://*.example.com`` is only safe with a public-suffix list
  (``*.github.io`` would admit every Pages site) and a bare ``*`` defeats the point; list origins.
* Only ``https`` and ``http`` (for ``localhost`` development); no paths, queries, fragments,
  userinfo, empty ports, leading-zero ports, trailing-dot hosts or non-ASCII hosts (use the
  ``xn--`` form, which is what browsers send).
* ``null`` is never an entry and never matches: sandboxed iframes, ``file:`` pages and cross-origin
  redirects all send it, so it identifies nobody.
* An **empty** list means the key is for servers only: any request that carries an ``Origin``
  header is refused, so a secret key pasted into a web page stops working and the leak is visible.
  A non-empty list makes a browser key: the request must carry one of the listed origins.

``Origin`` is trivially forged outside a browser, so this protects against other web pages using a
key, not against a script; browser keys should carry low-privilege scopes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Final

from .allowlist import EntryRules, EntrySet

__all__ = ["MAX_ALLOWED_ORIGINS", "OriginAllowlist", "normalise_origin"]

MAX_ALLOWED_ORIGINS: Final = 50
_MAX_ORIGIN_CHARS: Final = 300
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PORT: Final = re.compile(r"[1-9][0-9]{0,4}")


def _host(text: str) -> str:
    if text.startswith("["):
        if not text.endswith("]"):
            raise ValueError("has an unterminated IPv6 literal")
        inner = text[1:-1]
        if "%" in inner:
            raise ValueError("must not contain a zone id")
        try:
            return f"[{ipaddress.IPv6Address(inner).compressed}]"
        except ValueError:
            raise ValueError("has an invalid IPv6 literal") from None
    if not text.isascii():
        raise ValueError("host must be ASCII (use the xn-- form of international names)")
    host = text.lower()
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise ValueError("has an invalid host name")
    last = host.rsplit(".", 1)[-1]
    if last.isdigit() or last.startswith("0x"):
        # Browsers (WHATWG URL) read such hosts as IPv4 and send them dotted-decimal; accept only
        # that spelling so an entry can never look different from the header it must match.
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError("has an invalid IPv4 address") from None
    return host


def normalise_origin(text: str) -> str:  # noqa: C901 - the RFC 6454 serialisation rules, one check each
    """Return the canonical ``scheme://host[:port]`` or raise ValueError saying what is wrong."""
    if not text:
        raise ValueError("must not be empty")
    if len(text) > _MAX_ORIGIN_CHARS:
        raise ValueError("is too long to be an origin")
    if text.strip().lower() == "null":
        raise ValueError("the null origin identifies nobody and cannot be allowed")
    if "*" in text:
        raise ValueError("wildcards are not supported; list each origin")
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS:
        raise ValueError("must start with https:// or http://")
    if rest.endswith("/"):
        rest = rest[:-1]
    for char, what in (("/", "a path"), ("?", "a query"), ("#", "a fragment"), ("@", "userinfo")):
        if char in rest:
            raise ValueError(f"must be scheme://host[:port] without {what}")
    if any(c.isspace() or c == "\\" for c in rest):
        raise ValueError("must not contain whitespace or backslashes")
    host_text, port_text = rest, ""
    bracket_end = rest.rfind("]")
    colon = rest.rfind(":")
    if colon > bracket_end:
        host_text, port_text = rest[:colon], rest[colon + 1 :]
        if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
            raise ValueError("has an invalid port")
    if not host_text:
        raise ValueError("has no host")
    host = _host(host_text)
    port = int(port_text) if port_text else _DEFAULT_PORTS[scheme]
    return f"{scheme}://{host}" if port == _DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{port}"


_RULES: Final = EntryRules(
    normalise_origin, MAX_ALLOWED_ORIGINS, "TOO_MANY_ORIGINS", "ORIGIN_INVALID"
)


class OriginAllowlist(EntrySet):
    """An immutable set of normalised origins; empty means "servers only"."""

    __slots__ = ("origins",)

    def __init__(self, origins: Iterable[str] = ()) -> None:
        self.origins: frozenset[str] = frozenset(normalise_origin(o) for o in origins)

    @classmethod
    def parse(cls, entries: Sequence[str], *, field: str = "allowed_origins") -> OriginAllowlist:
        """Validate user input; every bad entry is reported as ``field[i]`` in one error."""
        return cls(_RULES.parse(entries, field))

    @property
    def browser_allowed(self) -> bool:
        return bool(self.origins)

    def allows(self, origin_header: str | None) -> bool:
        """Whether a request with this ``Origin`` header (None when absent) may use the key."""
        if origin_header is None:
            return not self.origins
        try:
            return normalise_origin(origin_header) in self.origins
        except ValueError:
            return False  # "null", junk or anything we would never store

    def entries(self) -> frozenset[str]:
        return self.origins

    def as_strings(self) -> list[str]:
        return sorted(self.origins)
