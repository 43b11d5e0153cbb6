"""The one rule: a caller never obtains a secret, or a key, whose rights exceed its own."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keys_service.domain import (
    Facet,
    IpAllowlist,
    KeyEnvironment,
    OriginAllowlist,
    Rights,
    Role,
    ScopeSet,
    ensure_grant,
)
from servicekit.errors import PermissionDenied

NOW = datetime(2026, 1, 1, tzinfo=UTC)
USER_RIGHTS = ScopeSet(["keys:write", "members:read"])


def key(
    *,
    role: Role = Role.USER,
    scopes: tuple[str, ...] = ("keys:write",),
    cidrs: tuple[str, ...] = (),
    origins: tuple[str, ...] = (),
    expires: datetime | None = None,
    env: KeyEnvironment = KeyEnvironment.LIVE,
    aal: str = "aal1",
) -> Rights:
    return Rights.of_key(
        role=role,
        scopes=ScopeSet(scopes),
        allowed_cidrs=IpAllowlist(ipaddress.ip_network(c) for c in cidrs),
        allowed_origins=OriginAllowlist(origins),
        expires_at=expires,
        environment=env,
        aal=aal,
    )


def refused(grant: Rights, holder: Rights, **kw: object) -> str:
    with pytest.raises(PermissionDenied) as info:
        ensure_grant(grant, holder, **kw)  # type: ignore[arg-type]
    return info.value.reason


def test_a_user_may_grant_any_restriction_within_its_role() -> None:
    user = Rights.of_user(Role.USER, USER_RIGHTS, "aal1")
    ensure_grant(key(cidrs=("10.0.0.0/8",), origins=("https://a.example",)), user)
    ensure_grant(key(env=KeyEnvironment.TEST, expires=NOW), user)
    ensure_grant(key(), user)


@pytest.mark.parametrize(
    ("grant", "holder", "reason"),
    [
        (key(role=Role.OWNER), key(role=Role.ADMIN), "ROLE_EXCEEDS_CALLER"),
        (key(scopes=("members:write",)), key(scopes=("keys:write",)), "SCOPE_EXCEEDS_CREATOR"),
        (key(scopes=("keys:write",)), key(scopes=("keys:read",)), "SCOPE_EXCEEDS_CREATOR"),
        # an empty allowlist means "any address": wider than any list
        (key(cidrs=()), key(cidrs=("10.0.0.0/8",)), "CIDRS_EXCEED_CALLER"),
        (key(cidrs=("10.0.0.0/7",)), key(cidrs=("10.0.0.0/8",)), "CIDRS_EXCEED_CALLER"),
        (key(cidrs=("11.0.0.1/32",)), key(cidrs=("10.0.0.0/8",)), "CIDRS_EXCEED_CALLER"),
        (key(cidrs=("::ffff:0:0/96",)), key(cidrs=("10.0.0.0/8",)), "CIDRS_EXCEED_CALLER"),
        # a servers-only key cannot grant browser access, nor a browser key server access
        (key(origins=("https://a.example",)), key(origins=()), "ORIGINS_EXCEED_CALLER"),
        (key(origins=()), key(origins=("https://a.example",)), "ORIGINS_EXCEED_CALLER"),
        (
            key(origins=("https://a.example", "https://b.example")),
            key(origins=("https://a.example",)),
            "ORIGINS_EXCEED_CALLER",
        ),
        (key(expires=None), key(expires=NOW), "EXPIRY_EXCEEDS_CALLER"),
        (key(expires=NOW + timedelta(seconds=1)), key(expires=NOW), "EXPIRY_EXCEEDS_CALLER"),
        (key(env=KeyEnvironment.LIVE), key(env=KeyEnvironment.TEST), "ENVIRONMENT_EXCEEDS_CALLER"),
        (key(env=KeyEnvironment.TEST), key(env=KeyEnvironment.LIVE), "ENVIRONMENT_EXCEEDS_CALLER"),
        (key(aal="aal2"), key(aal="aal1"), "AAL_EXCEEDS_CALLER"),
        (key(aal="aal2"), key(aal="junk"), "AAL_EXCEEDS_CALLER"),
    ],
)
def test_each_facet_wider_than_the_holder_is_refused(
    grant: Rights, holder: Rights, reason: str
) -> None:
    assert refused(grant, holder) == reason


def test_narrowing_every_facet_is_allowed() -> None:
    holder = key(
        role=Role.ADMIN,
        scopes=("keys:write", "members:read"),
        cidrs=("10.0.0.0/8", "2001:db8::/32"),
        origins=("https://a.example", "https://b.example"),
        expires=NOW + timedelta(days=2),
        aal="aal2",
    )
    narrower = key(
        role=Role.USER,
        scopes=("keys:read",),  # implied by keys:write
        cidrs=("10.1.2.0/24", "2001:db8:1::/48"),
        origins=("https://a.example",),
        expires=NOW + timedelta(days=1),
        aal="aal1",
    )
    ensure_grant(narrower, holder)
    ensure_grant(holder, holder)  # a key may always re-issue exactly itself (self-rotation)


def test_facets_limit_the_check_to_what_changes() -> None:
    holder = key(cidrs=("10.0.0.0/8",))
    wide_scopes = key(scopes=("members:write",), cidrs=("10.0.0.0/8",))
    ensure_grant(wide_scopes, holder, facets={Facet.ALLOWED_CIDRS})
    assert refused(key(cidrs=()), holder, facets={Facet.ALLOWED_CIDRS}) == "CIDRS_EXCEED_CALLER"
    assert refused(wide_scopes, holder, facets={Facet.SCOPES}) == "SCOPE_EXCEEDS_CREATOR"


def test_refusals_name_the_field_and_never_a_secret() -> None:
    with pytest.raises(PermissionDenied) as info:
        ensure_grant(key(expires=None), key(expires=NOW))
    assert info.value.metadata == {"field": "expire_time"}


# ---- property-style: the rule is a preorder and agrees with what a request could do ---------

_NETS = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.168.0.0/16", "2001:db8::/32"]
_ORIGINS = ["https://a.example", "https://b.example", "https://c.example"]
_SCOPES = ["keys:read", "keys:write", "members:read", "members:write"]
_PROBE_IPS = ["10.1.2.3", "10.9.9.9", "192.168.1.1", "8.8.8.8", "2001:db8::1", "2001:db9::1"]


@st.composite
def rights(draw: st.DrawFn) -> Rights:
    return key(
        role=draw(st.sampled_from([Role.USER, Role.ADMIN, Role.OWNER])),
        scopes=tuple(draw(st.sets(st.sampled_from(_SCOPES), min_size=1))),
        cidrs=tuple(draw(st.sets(st.sampled_from(_NETS), max_size=3))),
        origins=tuple(draw(st.sets(st.sampled_from(_ORIGINS), max_size=2))),
        expires=draw(st.one_of(st.none(), st.integers(0, 3).map(lambda d: NOW + timedelta(d)))),
        env=draw(st.sampled_from(list(KeyEnvironment))),
        aal=draw(st.sampled_from(["aal1", "aal2"])),
    )


def _within(grant: Rights, holder: Rights) -> bool:
    try:
        ensure_grant(grant, holder)
    except PermissionDenied:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(rights(), rights(), rights())
def test_the_rule_is_reflexive_and_transitive(a: Rights, b: Rights, c: Rights) -> None:
    assert _within(a, a)
    if _within(a, b) and _within(b, c):
        assert _within(a, c)


@settings(max_examples=300, deadline=None)
@given(rights(), rights())
def test_a_grant_within_its_holder_never_admits_a_request_the_holder_refuses(
    grant: Rights, holder: Rights
) -> None:
    """Soundness against the verify checks: IP, origin, scope and time."""
    if not _within(grant, holder):
        return
    assert grant.allowed_origins is not None and holder.allowed_origins is not None
    for ip in _PROBE_IPS:
        if grant.allowed_cidrs.allows(ip):
            assert holder.allowed_cidrs.allows(ip), ip
    for origin in [None, *_ORIGINS]:
        if grant.allowed_origins.allows(origin):
            assert holder.allowed_origins.allows(origin), origin
    for scope in _SCOPES:
        if grant.scopes.covers(scope):
            assert holder.scopes.covers(scope), scope
    for days in range(5):
        when = NOW + timedelta(days=days)
        grant_alive = grant.expires_at is None or when < grant.expires_at
        holder_alive = holder.expires_at is None or when < holder.expires_at
        assert not grant_alive or holder_alive
