"""The client IP comes from the socket unless the peer is a trusted proxy."""

from __future__ import annotations

from edge_service.client_ip import ClientIpResolver, limit_subject


def test_untrusted_peer_header_is_ignored() -> None:
    resolver = ClientIpResolver([])
    assert resolver.resolve("203.0.113.9", ["10.0.0.1"]) == "203.0.113.9"


def test_trusted_proxy_chain_is_read_right_to_left() -> None:
    resolver = ClientIpResolver(["10.0.0.0/8"])
    # client spoofs a first hop; the proxy appends the real address
    assert resolver.resolve("10.1.1.1", ["1.2.3.4, 198.51.100.7"]) == "198.51.100.7"
    assert resolver.resolve("10.1.1.1", ["198.51.100.7, 10.2.2.2"]) == "198.51.100.7"


def test_garbled_chain_from_a_trusted_proxy_names_nobody() -> None:
    resolver = ClientIpResolver(["10.0.0.0/8"])
    assert resolver.resolve("10.1.1.1", ["not-an-ip"]) == ""


def test_ipv4_mapped_peer_is_normalised() -> None:
    assert ClientIpResolver().resolve("::ffff:192.0.2.1", []) == "192.0.2.1"
    assert ClientIpResolver().resolve("2001:db8::1", []) == "2001:db8::1"


def test_limits_count_ipv4_addresses_and_ipv6_networks() -> None:
    assert limit_subject("203.0.113.9") == "ip:203.0.113.9"
    assert limit_subject("::ffff:203.0.113.9") == "ip:203.0.113.9"
    assert limit_subject("2001:db8:1:2:aaaa::1") == limit_subject("2001:db8:1:2:ffff::9")
    assert limit_subject("2001:db8:1:2::1") == "ip:2001:db8:1:2::/64"
    assert limit_subject("2001:db8:1:3::1") != limit_subject("2001:db8:1:2::1")
    assert limit_subject("2001:db8:1:2::1", 48) == limit_subject("2001:db8:1:3::1", 48)
    assert limit_subject("") == "ip:unknown"
