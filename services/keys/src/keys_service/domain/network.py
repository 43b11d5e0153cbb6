"""Per-key IP/CIDR allowlists (IPv4 and IPv6).

Decisions:

* An empty list means "no IP restriction"; a key restricted to nothing would be unusable.
* A bare address is a single host (``/32`` or ``/128``).
* Host bits set (``10.1.2.3/8``) are **rejected**, with the network it would have been as a hint:
  silently widening a typo to a whole ``/8`` would grant access the owner never meant to grant.
* ``/0`` is rejected (it restricts nothing; leave the list empty instead), as are zone ids
  (``fe80::1%eth0``: interface-local, meaningless across machines), multicast networks (never a
  source address), leading-zero octets (octal ambiguity) and anything ``ipaddress`` cannot parse.
* IPv4-mapped IPv6 (``::ffff:1.2.3.4``) is one address written two ways: entries inside
  ``::ffff:0:0/96`` are stored as their IPv4 network, and clients are canonicalised the same way
  before matching, so neither form slips past the other.
* Duplicates after normalisation are rejected, so what is stored is what the owner meant.

The client IP must come from the edge's trusted-proxy chain, never from a raw ``X-Forwarded-For``;
an address that is missing or does not parse never matches (fail closed).

Matching is a set lookup per distinct prefix length present, so its cost does not grow with the
number of entries.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Final

from .allowlist import EntryRules, EntrySet

__all__ = ["MAX_ALLOWED_CIDRS", "IpAddress", "IpAllowlist", "IpNetwork", "canonical_ip"]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_ALLOWED_CIDRS: Final = 100
_MAX_ENTRY_CHARS: Final = 64  # longest legal IPv6 CIDR text is 49; bound work on junk
_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")


def canonical_ip(address: str | IpAddress) -> IpAddress | None:
    """The address to match on: zone id dropped, IPv4-mapped IPv6 as IPv4; None if unparsable."""
    if isinstance(address, str):
        try:
            address = ipaddress.ip_address(address.strip())
        except ValueError:
            return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            return ipaddress.IPv6Address(int(address))
    return address


def _parse_entry(text: str) -> IpNetwork:
    """Parse one entry or raise ValueError with a user-facing description."""
    text = text.strip()
    if not text:
        raise ValueError("must not be empty")
    if len(text) > _MAX_ENTRY_CHARS:
        raise ValueError("is too long to be an IP address or CIDR")
    if "%" in text:
        raise ValueError("zone ids (%...) are not allowed")
    try:
        network: IpNetwork = ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError("is not an IPv4/IPv6 address or CIDR") from None
        raise ValueError(f"has host bits set; did you mean {loose}?") from None
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None  # guaranteed by subnet_of(::ffff:0:0/96)
        network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    if network.prefixlen == 0:
        raise ValueError("matches every address; leave the list empty for no restriction")
    if network.is_multicast:
        raise ValueError("is a multicast network, which is never a client address")
    return network


_RULES: Final = EntryRules(_parse_entry, MAX_ALLOWED_CIDRS, "TOO_MANY_CIDRS", "CIDR_INVALID")


class IpAllowlist(EntrySet):
    """An immutable, normalised set of networks with an O(prefix lengths) matcher."""

    __slots__ = ("_index", "networks")

    def __init__(self, networks: Iterable[IpNetwork] = ()) -> None:
        self.networks: tuple[IpNetwork, ...] = tuple(networks)
        index: dict[tuple[int, int], set[int]] = {}
        for net in self.networks:
            index.setdefault((net.version, net.prefixlen), set()).add(int(net.network_address))
        self._index = tuple(
            (version, prefix, _mask(version, prefix), frozenset(nets))
            for (version, prefix), nets in sorted(index.items())
        )

    @classmethod
    def parse(cls, entries: Sequence[str], *, field: str = "allowed_cidrs") -> IpAllowlist:
        """Validate user input; every bad entry is reported as ``field[i]`` in one error."""
        return cls(_RULES.parse(entries, field))

    @property
    def unrestricted(self) -> bool:
        return not self.networks

    def allows(self, address: str | IpAddress | None) -> bool:
        """Whether a client address may use the key; unparsable or missing addresses never do."""
        if self.unrestricted:
            return True
        if address is None or (ip := canonical_ip(address)) is None:
            return False
        value = int(ip)
        return any(
            version == ip.version and value & mask in nets for version, _, mask, nets in self._index
        )

    def entries(self) -> frozenset[IpNetwork]:
        return frozenset(self.networks)

    def as_strings(self) -> list[str]:
        return [str(net) for net in self.networks]


def _mask(version: int, prefix: int) -> int:
    bits = 32 if version == 4 else 128
    return ((1 << prefix) - 1) << (bits - prefix)
