"""Free TCP ports for the processes a test or a benchmark starts on this machine.

Asking the kernel for port 0 and closing the socket is racy: the port is in the ephemeral
range, so between that probe and the server's own bind any outgoing connection or any other
``bind(("", 0))`` on the machine may be given the same port (CI saw a replica fail with
"Address already in use" that way), and two probes in a row may even return the same port.
Here a port is drawn from below the ephemeral range, which the kernel never hands out by
itself, is never handed out twice by this process, and is checked free on every IPv4 and IPv6
address before it is returned.
"""

from __future__ import annotations

import errno
import random
import socket
import threading
from pathlib import Path

__all__ = ["ephemeral_range", "free_port"]

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LINUX_DEFAULT = (32768, 60999)
_LOWEST = 10_000  # below this sit the well-known and registered services people run
_ATTEMPTS = 500

_handed_out: set[int] = set()
_lock = threading.Lock()
_NO_IPV6 = {errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL}


def ephemeral_range() -> tuple[int, int]:
    """The kernel's ephemeral port range (``ip_local_port_range``), or Linux's default."""
    try:
        low, high = (int(part) for part in _RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return _LINUX_DEFAULT
    return low, high


def _candidates() -> range:
    low, high = ephemeral_range()
    if low - _LOWEST >= 2_000:
        return range(_LOWEST, low)
    return range(high + 1, 65_536)  # an unusual range that starts low: use what lies above it


def _bindable(port: int) -> bool:
    """Whether nothing holds ``port`` on any address (no SO_REUSEADDR: TIME_WAIT counts too)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("0.0.0.0", port))  # noqa: S104 - a probe, closed at once
    except OSError:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            probe.bind(("::", port))
    except OSError as exc:
        return exc.errno in _NO_IPV6  # IPv6 off on this machine: nothing can hold it there
    return True


def free_port() -> int:
    """A TCP port free on every address, outside the ephemeral range, new to this process."""
    pool = _candidates()
    with _lock:
        for _ in range(_ATTEMPTS):
            port = random.choice(pool)  # noqa: S311 - a port number, not a secret
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no free port found in {pool.start}-{pool.stop - 1}")
