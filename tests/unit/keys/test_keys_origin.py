"""Origin allowlists: exact scheme://host[:port] entries, normalisation, and header matching."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from keys_service.domain import MAX_ALLOWED_ORIGINS, OriginAllowlist, normalise_origin
from servicekit.errors import InvalidArgument

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hosts = (
    st.lists(labels, min_size=1, max_size=4)
    .map(".".join)
    .filter(
        lambda h: not h.rsplit(".", 1)[-1].isdigit() and not h.rsplit(".", 1)[-1].startswith("0x")
    )
)
schemes = st.sampled_from(["http", "https"])
ports = st.one_of(st.none(), st.integers(1, 65535))


def _origin(scheme: str, host: str, port: int | None) -> str:
    return f"{scheme}://{host}" + ("" if port is None else f":{port}")


def _random_case(data: st.DataObject, text: str) -> str:
    flips = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if f else c for c, f in zip(text, flips, strict=True))


@given(schemes, hosts, ports, st.data())
def test_normalisation_is_canonical_and_idempotent(
    scheme: str, host: str, port: int | None, data: st.DataObject
) -> None:
    text = _origin(scheme, host, port)
    canonical = normalise_origin(text)
    assert normalise_origin(canonical) == canonical
    assert normalise_origin(_random_case(data, text)) == canonical
    assert normalise_origin(text + "/") == canonical
    default = {"http": 80, "https": 443}[scheme]
    assert canonical == (f"{scheme}://{host}" if port in (None, default) else text)


@given(schemes, hosts, ports, st.data())
def test_header_matches_exactly_after_normalisation(
    scheme: str, host: str, port: int | None, data: st.DataObject
) -> None:
    allow = OriginAllowlist.parse([_origin(scheme, host, port)])
    assert allow.allows(_random_case(data, _origin(scheme, host, port)))
    assert not allow.allows(_origin(scheme, "evil." + host, port))
    assert not allow.allows(_origin(scheme, host + ".evil.com", port))
    other = "http" if scheme == "https" else "https"
    assert not allow.allows(_origin(other, host, port))
    assert not allow.allows("null")


def test_examples() -> None:
    assert normalise_origin("HTTPS://App.Example.COM:443") == "https://app.example.com"
    assert normalise_origin("http://localhost:3000/") == "http://localhost:3000"
    assert normalise_origin("http://[0:0::1]:80") == "http://[::1]"
    assert normalise_origin("https://127.0.0.1:8443") == "https://127.0.0.1:8443"
    assert normalise_origin("https://xn--bcher-kva.example") == "https://xn--bcher-kva.example"


@pytest.mark.parametrize(
    "entry",
    [
        "", "null", "*", "https://*", "https://*.example.com", "example.com", "//example.com",
        "ftp://example.com", "chrome-extension://abc", "https://example.com/path",
        "https://example.com//", "https://example.com?q=1", "https://example.com#x",
        "https://user:pw@example.com", "https://example.com:", "https://example.com:0",
        "https://example.com:65536", "https://example.com:0443", "https://example.com:+443",
        "https://example.com.", "https://exa mple.com", "https://-bad.com", "https://a..com",
        "https://bücher.example", "https://[::1", "https://[fe80::1%25eth0]", "https://[junk]",
        "https://1.2.3", "https://0x7f.1", "https://256.1.1.1", "https://example.com\\@evil.com",
        "https://" + "a" * 64 + ".com", "https://example.com\n",
    ],
)  # fmt: skip
def test_rejects_non_origins(entry: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        OriginAllowlist.parse(["https://ok.example", entry])
    assert info.value.reason == "ORIGIN_INVALID"
    assert [v.field for v in info.value.violations] == ["allowed_origins[1]"]


def test_duplicates_after_normalisation_and_limit() -> None:
    with pytest.raises(InvalidArgument) as info:
        OriginAllowlist.parse(["https://a.example", "HTTPS://A.example:443/"])
    assert info.value.violations[0].description.startswith("duplicates allowed_origins[0]")
    many = [f"https://app{i}.example" for i in range(MAX_ALLOWED_ORIGINS + 1)]
    OriginAllowlist.parse(many[:-1])
    with pytest.raises(InvalidArgument) as info:
        OriginAllowlist.parse(many)
    assert info.value.reason == "TOO_MANY_ORIGINS"


def test_empty_list_means_servers_only() -> None:
    servers_only = OriginAllowlist.parse([])
    assert servers_only.allows(None)
    assert not servers_only.allows("https://app.example")
    assert not servers_only.allows("null")


def test_browser_key_requires_a_listed_origin() -> None:
    browser = OriginAllowlist.parse(["https://app.example"])
    assert browser.allows("https://app.example")
    assert not browser.allows(None)
    assert not browser.allows("null")
    assert not browser.allows("https://app.example.evil.com")
    assert browser.allows("HTTPS://APP.example:443")
    assert not browser.allows("garbage")


@given(st.text(max_size=60))
def test_garbage_headers_never_crash(header: str) -> None:
    OriginAllowlist.parse(["https://app.example"]).allows(header)
