"""Opaque page tokens, page-size rules and one page read (:func:`fetch_page`), shared by every List
RPC (AIP-158)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from servicekit.errors import InvalidArgument

__all__ = ["Page", "decode_token", "encode_token", "fetch_page", "page_request"]

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


def _fingerprint(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:16]


def encode_token(cursor: str, query: str = "") -> str:
    """A token for the page after ``cursor``; bound to the query so it cannot be reused elsewhere."""
    raw = json.dumps({"v": 1, "c": cursor, "q": _fingerprint(query)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, query: str = "") -> str:
    """The cursor inside a token; INVALID_ARGUMENT for a token that is not ours or not this query's."""
    if not token:
        return ""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if (
            data.get("v") != 1
            or data.get("q") != _fingerprint(query)
            or not isinstance(data.get("c"), str)
        ):
            raise ValueError
        return str(data["c"])
    except (ValueError, binascii.Error, UnicodeDecodeError, AttributeError):
        raise InvalidArgument.field(
            "page_token", "is not a valid page token", reason="INVALID_PAGE_TOKEN"
        ) from None


@dataclass(frozen=True, slots=True)
class Page:
    size: int
    cursor: str


def page_request(page_size: int, page_token: str, query: str = "") -> Page:
    """Validate a List request's paging: negative sizes are refused, zero means default, big is capped."""
    if page_size < 0:
        raise InvalidArgument.field("page_size", "must not be negative", reason="INVALID_PAGE_SIZE")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    return Page(size, decode_token(page_token, query))


async def fetch_page(
    page_size: int,
    page_token: str,
    query: str,
    read: Callable[[str, int], Awaitable[Sequence[T]]],
    cursor: Callable[[T], str],
) -> tuple[list[T], str]:
    """The page of rows and the next page's token (empty on the last page).

    ``page_size`` and ``page_token`` are the request's, checked by
    :func:`~servicekit.pagination.page_request` (a token is bound to ``query``) before anything
    is read; ``read(after, limit)`` returns at most ``limit`` rows in listing order after the
    cursor ``after`` (empty for the first page); ``cursor(row)`` is what a token resumes after.
    """
    page = page_request(page_size, page_token, query)
    rows = list(await read(page.cursor, page.size + 1))
    more = len(rows) > page.size
    rows = rows[: page.size]
    return rows, encode_token(cursor(rows[-1]), query) if more and rows else ""
