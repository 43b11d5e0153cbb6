"""devstack.free_port: outside the kernel's ephemeral range, never twice, never a held port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack import free_port, ports


def test_ports_are_outside_the_ephemeral_range_and_never_handed_out_twice() -> None:
    low, high = ports.ephemeral_range()
    given = [free_port() for _ in range(200)]
    assert len(set(given)) == len(given)
    assert all(not low <= port <= high for port in given)
    assert all(port >= 1024 for port in given)


@pytest.fixture
def held() -> Iterator[int]:
    """A port held by a listener on 127.0.0.2 only (as a topology replica binds it)."""
    for port in ports._candidates():
        if port in ports._handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.2", port))
            except OSError:
                continue
            sock.listen()
            yield port
            return
    pytest.fail("no port to hold")


def test_a_port_held_on_any_address_is_passed_over(
    held: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws = iter([held, held, held + 1 if held + 1 < ports._candidates().stop else held - 1])
    monkeypatch.setattr(ports.random, "choice", lambda pool: next(draws))
    chosen = free_port()
    assert chosen != held
    assert chosen in (held + 1, held - 1)


def test_the_ephemeral_range_is_read_from_the_kernel(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "range").write_text("40000\t50000\n")
    monkeypatch.setattr(ports, "_RANGE_FILE", tmp_path / "range")
    assert ports.ephemeral_range() == (40000, 50000)
    assert ports._candidates() == range(10_000, 40_000)
    (tmp_path / "range").write_text("1024 60999\n")  # a range that starts low: draw above it
    assert ports._candidates() == range(61_000, 65_536)
    monkeypatch.setattr(ports, "_RANGE_FILE", tmp_path / "missing")
    assert ports.ephemeral_range() == (32768, 60999)
