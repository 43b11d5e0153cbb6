"""One page of a List RPC read from storage, and the token of the next page (AIP-158).

Every listing reads one row more than the page holds, so it knows whether another page follows
without counting; the token of that next page resumes after the page's last row. Written here
once, a listing states only its query, how it reads and what its cursor is::

    rows, token = await fetch_page(page_size, page_token, query, read, lambda row: row.id)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from servicekit.pagination import encode_token, page_request

__all__ = ["fetch_page"]

T = TypeVar("T")


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
