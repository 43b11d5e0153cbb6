"""Scopes: grammar, catalogue validation, write-implies-read, and the creator ceiling."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from keys_service.domain import MAX_SCOPES, Scope, ScopeCatalogue, ScopeSet, ensure_within
from servicekit.errors import InvalidArgument, PermissionDenied

CATALOGUE = ScopeCatalogue(
    ["keys:read", "keys:write", "credentials:read", "credentials:write", "workspaces:read",
     "credentials:use", "audit:read"]
)  # fmt: skip

names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
scopes = st.builds(Scope, names, names)


@given(scopes)
def test_parse_round_trip(scope: Scope) -> None:
    assert Scope.parse(str(scope)) == scope


@given(st.text(max_size=40))
def test_parse_rejects_or_round_trips(text: str) -> None:
    try:
        scope = Scope.parse(text)
    except ValueError:
        return
    assert str(scope) == text


@pytest.mark.parametrize(
    "text", ["", "keys", "keys:", ":read", "Keys:read", "keys:read:x", "keys:*", "*", " keys:read",
             "keys:read ", "keys.read", "1keys:read", "kéys:read"]
)  # fmt: skip
def test_grammar_rejections(text: str) -> None:
    with pytest.raises(ValueError):
        Scope.parse(text)


def test_write_implies_read_of_the_same_resource_only() -> None:
    held = ScopeSet(["keys:write"])
    assert held.covers("keys:write") and held.covers(Scope("keys", "read"))
    assert not held.covers("credentials:read")
    assert not ScopeSet(["keys:read"]).covers("keys:write")
    assert not ScopeSet(["credentials:write"]).covers("credentials:use")


@given(st.sets(scopes, max_size=8), scopes)
def test_covers_is_membership_plus_write_read(held: set[Scope], wanted: Scope) -> None:
    expected = wanted in held or (
        wanted.action == "read" and Scope(wanted.resource, "write") in held
    )
    assert ScopeSet(held).covers(wanted) is expected


def test_parse_against_catalogue_reports_every_violation() -> None:
    with pytest.raises(InvalidArgument) as info:
        ScopeSet.parse(["keys:read", "keys:admin", "nope", "keys:read"], CATALOGUE)
    assert info.value.reason == "SCOPE_INVALID"
    got = {v.field: v.description for v in info.value.violations}
    assert got.keys() == {"scopes[1]", "scopes[2]", "scopes[3]"}
    assert got["scopes[1]"] == "unknown scope keys:admin"
    assert got["scopes[3]"] == "duplicates scopes[0]"


def test_parse_requires_at_least_one_and_caps_count() -> None:
    with pytest.raises(InvalidArgument, match="at least one"):
        ScopeSet.parse([], CATALOGUE)
    with pytest.raises(InvalidArgument) as info:
        ScopeSet.parse(["keys:read"] * (MAX_SCOPES + 1), CATALOGUE)
    assert info.value.reason == "TOO_MANY_SCOPES"
    parsed = ScopeSet.parse(["keys:write", "audit:read"], CATALOGUE)
    assert parsed.as_strings() == ["audit:read", "keys:write"]


def test_ceiling_is_the_creators_rights() -> None:
    creator = ScopeSet(["keys:write", "credentials:read"])
    ensure_within(ScopeSet(["keys:read", "keys:write", "credentials:read"]), creator)
    with pytest.raises(PermissionDenied) as info:
        ensure_within(ScopeSet(["keys:read", "credentials:write", "audit:read"]), creator)
    assert info.value.reason == "SCOPE_EXCEEDS_CREATOR"
    assert info.value.metadata["scopes"] == "audit:read, credentials:write"


@given(st.sets(scopes, max_size=6), st.sets(scopes, max_size=6))
def test_ceiling_accepts_exactly_the_covered_subsets(
    requested: set[Scope], held: set[Scope]
) -> None:
    ceiling = ScopeSet(held)
    ok = all(ceiling.covers(s) for s in requested)
    try:
        ensure_within(ScopeSet(requested), ceiling)
    except PermissionDenied:
        assert not ok
    else:
        assert ok
