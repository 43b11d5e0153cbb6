"""servicekit.pagination.fetch_page: one row more than the page is read, the token resumes after
the page's last row, the last page has no token, and a token only works for its own query."""

from __future__ import annotations

import pytest
from servicekit.errors import InvalidArgument
from servicekit.pagination import MAX_PAGE_SIZE, fetch_page

ROWS = [f"r{i:02d}" for i in range(7)]


class Reader:
    """Rows in id order after a cursor, recording every read it was asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, after: str, limit: int) -> list[str]:
        self.calls.append((after, limit))
        return [r for r in ROWS if r > after][:limit]


async def _walk(page_size: int, query: str = "ws1") -> list[list[str]]:
    pages, token = [], ""
    while True:
        rows, token = await fetch_page(page_size, token, query, Reader(), lambda r: r)
        pages.append(rows)
        if not token:
            return pages


async def test_pages_cover_every_row_once_and_the_last_has_no_token() -> None:
    assert await _walk(3) == [ROWS[0:3], ROWS[3:6], ROWS[6:7]]


async def test_an_exactly_full_last_page_has_no_token() -> None:
    rows, token = await fetch_page(7, "", "ws1", Reader(), lambda r: r)
    assert rows == ROWS
    assert token == ""


async def test_one_row_more_than_the_page_is_read_and_the_size_is_capped() -> None:
    read = Reader()
    await fetch_page(3, "", "ws1", read, lambda r: r)
    await fetch_page(10_000, "", "ws1", read, lambda r: r)
    assert read.calls == [("", 4), ("", MAX_PAGE_SIZE + 1)]


async def test_the_next_read_resumes_after_the_last_row_shown() -> None:
    _, token = await fetch_page(2, "", "ws1", Reader(), lambda r: r)
    read = Reader()
    rows, _ = await fetch_page(2, token, "ws1", read, lambda r: r)
    assert read.calls == [("r01", 3)]
    assert rows == ["r02", "r03"]


async def test_a_token_of_another_query_is_refused_before_anything_is_read() -> None:
    _, token = await fetch_page(2, "", "ws1", Reader(), lambda r: r)
    read = Reader()
    with pytest.raises(InvalidArgument) as info:
        await fetch_page(2, token, "ws2", read, lambda r: r)
    assert info.value.reason == "INVALID_PAGE_TOKEN"
    assert read.calls == []


async def test_a_negative_page_size_is_refused() -> None:
    with pytest.raises(InvalidArgument) as info:
        await fetch_page(-1, "", "ws1", Reader(), lambda r: r)
    assert info.value.reason == "INVALID_PAGE_SIZE"
