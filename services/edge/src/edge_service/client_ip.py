"""The client's IP address: the socket peer, unless that peer is a configured trusted proxy.

Only then is ``X-Forwarded-For`` read, right to left, skipping trusted proxies; the first
untrusted hop is the client. A header sent by an untrusted peer is ignored entirely, so a
spoofed value can never satisfy an allowlist.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["ClientIpResolver", "limit_subject"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class ClientIpResolver:
    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self.trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(p.strip(), strict=False) for p in trusted_proxies if p.strip()
        )

    def _is_trusted(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip in net for net in self.trusted)

    def resolve(self, peer: str, forwarded_for: list[str]) -> str:
        """The client address for a request from ``peer`` carrying these X-Forwarded-For headers."""
        peer_ip = _parse_ip(peer)
        if peer_ip is None:
            return ""
        if not self._is_trusted(peer_ip):
            return str(peer_ip)
        hops = [h for header in forwarded_for for h in header.split(",")]
        for hop in reversed(hops):
            ip = _parse_ip(hop)
            if ip is None:
                return ""  # a garbled chain is not trusted to name anyone
            if not self._is_trusted(ip):
                return str(ip)
        return str(peer_ip)


def limit_subject(client_ip: str, ipv6_prefix: int = 64) -> str:
    """Whom a per-IP limit counts: the address for IPv4, its /``ipv6_prefix`` network for IPv6
    (one subscriber commonly holds a whole /64, so counting /128s would give it 2⁶⁴ buckets)."""
    ip = _parse_ip(client_ip)
    if ip is None:
        return "ip:unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((ip, ipv6_prefix), strict=False)
        return f"ip:{network.network_address.compressed}/{ipv6_prefix}"
    return f"ip:{ip}"
