"""IP/CIDR allowlists: parsing, normalisation, limits and matching (IPv4, IPv6, v4-mapped)."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from keys_service.domain import MAX_ALLOWED_CIDRS, IpAllowlist, IpNetwork, canonical_ip
from servicekit.errors import InvalidArgument

v4_networks = st.builds(
    lambda addr, prefix: ipaddress.IPv4Network((addr, prefix), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(1, 32),
).filter(lambda n: not n.is_multicast)
v6_networks = st.builds(
    lambda addr, prefix: ipaddress.IPv6Network((addr, prefix), strict=False),
    st.integers(0, 2**128 - 1),
    st.integers(1, 128),
).filter(lambda n: not n.is_multicast and not n.subnet_of(ipaddress.IPv6Network("::ffff:0:0/96")))


def _violations(entries: list[str]) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as info:
        IpAllowlist.parse(entries)
    return {v.field: v.description for v in info.value.violations}


@given(st.one_of(v4_networks, v6_networks), st.data())
def test_every_address_inside_a_network_matches(net: IpNetwork, data: st.DataObject) -> None:
    allow = IpAllowlist.parse([str(net)])
    offset = data.draw(st.integers(0, net.num_addresses - 1))
    inside = net.network_address + offset
    assert allow.allows(str(inside)) and allow.allows(inside)


@given(st.one_of(v4_networks, v6_networks), st.data())
def test_addresses_outside_never_match(net: IpNetwork, data: st.DataObject) -> None:
    allow = IpAllowlist.parse([str(net)])
    bits = 32 if net.version == 4 else 128
    value = data.draw(st.integers(0, 2**bits - 1))
    address = ipaddress.ip_address(value) if net.version == 4 else ipaddress.IPv6Address(value)
    # a v4-mapped address is an IPv4 address written as IPv6: it matches as IPv4, so never an
    # IPv6 entry (those exclude ::ffff:0:0/96), even one like ::/1 that spans the mapped range
    as_ipv4 = isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None
    assert allow.allows(address) is (address in net and not as_ipv4)


def test_a_mapped_address_never_matches_an_ipv6_entry_spanning_the_mapped_range() -> None:
    # found by the property above: ::ffff:0.0.0.0 lies in ::/1 as ipaddress reads it
    allow = IpAllowlist.parse(["::/1"])
    assert not allow.allows("::ffff:0:0") and not allow.allows("::ffff:10.0.0.1")
    assert allow.allows("::1")


@given(v4_networks, st.data())
def test_ipv4_mapped_ipv6_matches_as_ipv4_both_ways(
    net: ipaddress.IPv4Network, data: st.DataObject
) -> None:
    inside = net.network_address + data.draw(st.integers(0, net.num_addresses - 1))
    mapped = f"::ffff:{inside}"
    assert IpAllowlist.parse([str(net)]).allows(mapped)
    mapped_entry = f"::ffff:{net.network_address}/{net.prefixlen + 96}"
    allow = IpAllowlist.parse([mapped_entry])
    assert allow.as_strings() == [str(net)]
    assert allow.allows(str(inside)) and allow.allows(mapped)


def test_normalises_entries() -> None:
    allow = IpAllowlist.parse([" 10.0.0.0/8 ", "1.2.3.4", "2001:DB8:0:0::/32", "::1"])
    assert allow.as_strings() == ["10.0.0.0/8", "1.2.3.4/32", "2001:db8::/32", "::1/128"]
    assert allow == IpAllowlist.parse(["2001:db8::/32", "::1/128", "1.2.3.4/32", "10.0.0.0/8"])


def test_rejects_each_bad_entry_with_its_index() -> None:
    violations = _violations(
        ["10.0.0.0/8", "10.1.2.3/8", "", "fe80::1%eth0", "not-an-ip", "0.0.0.0/0", "::/0",
         "10.0.0.0/8", "224.0.0.0/4", "010.1.1.1", "1.2.3.4/33", "1.2.3.4/-1"]
    )  # fmt: skip
    assert "allowed_cidrs[0]" not in violations
    assert "did you mean 10.0.0.0/8" in violations["allowed_cidrs[1]"]
    assert violations["allowed_cidrs[2]"] == "must not be empty"
    assert "zone" in violations["allowed_cidrs[3]"]
    assert "not an IPv4/IPv6" in violations["allowed_cidrs[4]"]
    assert "leave the list empty" in violations["allowed_cidrs[5]"]
    assert "leave the list empty" in violations["allowed_cidrs[6]"]
    assert "duplicates allowed_cidrs[0]" in violations["allowed_cidrs[7]"]
    assert "multicast" in violations["allowed_cidrs[8]"]
    assert {"allowed_cidrs[9]", "allowed_cidrs[10]", "allowed_cidrs[11]"} <= violations.keys()


def test_mapped_and_plain_forms_are_duplicates() -> None:
    assert "duplicates" in _violations(["1.2.3.4", "::ffff:1.2.3.4"])["allowed_cidrs[1]"]


def test_limits_the_number_of_entries() -> None:
    entries = [f"10.0.{i // 256}.{i % 256}" for i in range(MAX_ALLOWED_CIDRS + 1)]
    IpAllowlist.parse(entries[:-1])
    with pytest.raises(InvalidArgument) as info:
        IpAllowlist.parse(entries)
    assert info.value.reason == "TOO_MANY_CIDRS"
    assert info.value.violations[0].field == "allowed_cidrs"


@given(st.text(max_size=80))
def test_garbage_is_rejected_or_normalised_idempotently(text: str) -> None:
    try:
        allow = IpAllowlist.parse([text])
    except InvalidArgument as exc:
        assert exc.reason == "CIDR_INVALID"
    else:
        assert IpAllowlist.parse(allow.as_strings()) == allow


def test_empty_list_is_unrestricted_and_restricted_list_fails_closed() -> None:
    assert IpAllowlist.parse([]).allows(None)
    allow = IpAllowlist.parse(["192.0.2.0/24"])
    assert not allow.allows(None)
    assert not allow.allows("garbage")
    assert not allow.allows("")
    assert not allow.allows("192.0.2.1, 10.0.0.1")  # an unsplit X-Forwarded-For is not an IP


def test_client_zone_id_is_ignored_for_matching() -> None:
    allow = IpAllowlist.parse(["fe80::/10"])
    assert allow.allows("fe80::1%eth0")
    assert canonical_ip("fe80::1%eth0") == ipaddress.IPv6Address("fe80::1")
    assert canonical_ip("::ffff:127.0.0.1") == ipaddress.IPv4Address("127.0.0.1")


def test_ipv4_entry_does_not_match_unrelated_ipv6() -> None:
    allow = IpAllowlist.parse(["1.2.3.0/24"])
    assert not allow.allows("::1.2.3.4")  # deprecated IPv4-compatible form is not mapped
    assert not allow.allows("2001:db8::102:304")
