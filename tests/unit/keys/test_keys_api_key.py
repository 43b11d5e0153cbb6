"""The ApiKey lifecycle and the verify decision: every reason, in order, with an injected clock."""

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from keys_service.domain import (
    ApiKey,
    DenyReason,
    IpAllowlist,
    KeyEnvironment,
    OriginAllowlist,
    PepperRing,
    PresentedKey,
    Scope,
    ScopeSet,
    SecretSlot,
    VerifyContext,
    generate_key,
    issue_key,
    parse_key,
    verify,
)
from servicekit.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    RailguardError,
    Unauthenticated,
)

T0 = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
RING = PepperRing({1: b"p" * 32}, current=1)
ADMIN = ScopeSet(["keys:write", "credentials:write", "workspaces:read"])


def _issue(**overrides: object) -> tuple[ApiKey, PresentedKey]:
    args: dict[str, object] = {
        "key_id": "key_1",
        "workspace_id": "ws_1",
        "name": "CI deploys",
        "environment": KeyEnvironment.LIVE,
        "scopes": ScopeSet(["keys:read", "credentials:read"]),
        "creator_rights": ADMIN,
        "created_by": "user_1",
        "now": T0,
        "ring": RING,
    }
    args.update(overrides)
    return issue_key(**args)  # type: ignore[arg-type]


def _ctx(**overrides: object) -> VerifyContext:
    args: dict[str, object] = {
        "now": T0 + timedelta(minutes=1),
        "workspace_active": True,
        "client_ip": "203.0.113.7",
        "origin": None,
        "required_scope": Scope("keys", "read"),
    }
    args.update(overrides)
    return VerifyContext(**args)  # type: ignore[arg-type]


def _deny(presented: PresentedKey, key: ApiKey | None, ctx: VerifyContext) -> RailguardError:
    with pytest.raises(RailguardError) as info:
        verify(presented, key, RING, ctx)
    return info.value


def test_issue_then_verify_happy_path() -> None:
    key, secret = _issue()
    assert key.display_prefix == secret.display_prefix
    assert secret.reveal() not in repr(key)
    result = verify(parse_key(secret.reveal()), key, RING, _ctx())
    assert (result.key, result.slot, result.needs_rehash) == (key, SecretSlot.CURRENT, False)


def test_unknown_deleted_or_mismatched_key_is_not_found() -> None:
    key, secret = _issue()
    other = generate_key(KeyEnvironment.LIVE)
    for presented, found in [
        (secret, None),
        (secret, replace(key, deleted_at=T0)),
        (other, key),  # a loose adapter query can never admit another secret
    ]:
        err = _deny(presented, found, _ctx())
        assert isinstance(err, Unauthenticated)
        assert err.reason == DenyReason.KEY_NOT_FOUND
        assert err.metadata == {}


@pytest.mark.parametrize(
    ("mutate", "ctx", "reason", "kind"),
    [
        (lambda k: replace(k, revoked_at=T0), {}, DenyReason.KEY_REVOKED, Unauthenticated),
        (lambda k: replace(k, expires_at=T0), {}, DenyReason.KEY_EXPIRED, Unauthenticated),
        (lambda k: k, {"workspace_active": False}, DenyReason.WORKSPACE_DELETED, PermissionDenied),
        (
            lambda k: replace(k, allowed_cidrs=IpAllowlist.parse(["10.0.0.0/8"])),
            {},
            DenyReason.IP_NOT_ALLOWED,
            PermissionDenied,
        ),
        (
            lambda k: k,
            {"origin": "https://app.example"},
            DenyReason.ORIGIN_NOT_ALLOWED,
            PermissionDenied,
        ),
        (
            lambda k: k,
            {"required_scope": Scope("keys", "write")},
            DenyReason.SCOPE_NOT_GRANTED,
            PermissionDenied,
        ),
    ],
)  # fmt: skip
def test_each_check_has_its_own_reason(
    mutate: object, ctx: dict[str, object], reason: DenyReason, kind: type[RailguardError]
) -> None:
    key, secret = _issue()
    assert callable(mutate)
    err = _deny(secret, mutate(key), _ctx(**ctx))
    assert type(err) is kind
    assert err.reason == reason
    assert err.metadata["key_id"] == "key_1"
    assert secret.reveal() not in f"{err} {err!r} {err.metadata}"


def test_checks_run_in_the_documented_order() -> None:
    key, secret = _issue()
    everything_wrong = replace(
        key,
        revoked_at=T0,
        expires_at=T0,
        allowed_cidrs=IpAllowlist.parse(["10.0.0.0/8"]),
        allowed_origins=OriginAllowlist.parse(["https://other.example"]),
    )
    ctx = _ctx(
        workspace_active=False, origin="https://app.example", required_scope=Scope("audit", "read")
    )
    order = [
        DenyReason.KEY_REVOKED,
        DenyReason.KEY_EXPIRED,
        DenyReason.WORKSPACE_DELETED,
        DenyReason.IP_NOT_ALLOWED,
        DenyReason.ORIGIN_NOT_ALLOWED,
        DenyReason.SCOPE_NOT_GRANTED,
    ]
    fixes: list[Callable[[ApiKey, VerifyContext], tuple[ApiKey, VerifyContext]]] = [
        lambda k, c: (replace(k, revoked_at=None), c),
        lambda k, c: (replace(k, expires_at=None), c),
        lambda k, c: (k, replace(c, workspace_active=True)),
        lambda k, c: (replace(k, allowed_cidrs=IpAllowlist()), c),
        lambda k, c: (k, replace(c, origin="https://other.example")),
        lambda k, c: (k, replace(c, required_scope=Scope("keys", "read"))),
    ]
    current, context = everything_wrong, ctx
    for reason, fix in zip(order, fixes, strict=True):
        assert _deny(secret, current, context).reason == reason
        current, context = fix(current, context)
    verify(secret, current, RING, context)


def test_expiry_instant_itself_is_expired() -> None:
    expires = T0 + timedelta(days=30)
    key, secret = _issue(expires_at=expires)
    verify(secret, key, RING, _ctx(now=expires - timedelta(microseconds=1)))
    assert _deny(secret, key, _ctx(now=expires)).reason == DenyReason.KEY_EXPIRED
    assert (
        _deny(secret, key, _ctx(now=expires + timedelta(days=1))).reason == DenyReason.KEY_EXPIRED
    )


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)))
def test_valid_strictly_before_expiry(elapsed: timedelta) -> None:
    key, secret = _issue(expires_at=T0 + timedelta(days=30))
    now = T0 + elapsed
    try:
        verify(secret, key, RING, _ctx(now=now))
    except Unauthenticated as exc:
        assert exc.reason == DenyReason.KEY_EXPIRED and now >= T0 + timedelta(days=30)
    else:
        assert now < T0 + timedelta(days=30)


def test_rotation_keeps_the_id_and_the_old_secret_works_until_grace_ends() -> None:
    key, old = _issue()
    now = T0 + timedelta(days=1)
    rotated, new = key.rotate(RING, now=now, grace=timedelta(hours=1))
    assert rotated.id == key.id and rotated.display_prefix == new.display_prefix
    assert rotated.previous_expires_at == now + timedelta(hours=1)
    assert verify(new, rotated, RING, _ctx(now=now)).slot is SecretSlot.CURRENT
    in_grace = verify(old, rotated, RING, _ctx(now=now + timedelta(minutes=59)))
    assert (in_grace.slot, in_grace.needs_rehash) == (SecretSlot.PREVIOUS, False)
    at_end = _deny(old, rotated, _ctx(now=now + timedelta(hours=1)))
    assert isinstance(at_end, Unauthenticated) and at_end.reason == DenyReason.KEY_ROTATED
    verify(new, rotated, RING, _ctx(now=now + timedelta(days=3)))


def test_rotation_grace_is_capped_by_expiry_and_zero_grace_drops_the_old_secret() -> None:
    key, old = _issue(expires_at=T0 + timedelta(hours=2))
    rotated, _ = key.rotate(RING, now=T0 + timedelta(hours=1), grace=timedelta(days=1))
    assert rotated.previous_expires_at == T0 + timedelta(hours=2)
    immediate, _ = key.rotate(RING, now=T0, grace=timedelta(0))
    assert immediate.previous_secret_hash is None
    assert _deny(old, immediate, _ctx()).reason == DenyReason.KEY_NOT_FOUND


def test_second_rotation_ends_the_first_grace() -> None:
    key, first = _issue()
    once, second = key.rotate(RING, now=T0, grace=timedelta(days=1))
    twice, third = once.rotate(RING, now=T0 + timedelta(minutes=5), grace=timedelta(days=1))
    ctx = _ctx(now=T0 + timedelta(minutes=6))
    assert _deny(first, twice, ctx).reason == DenyReason.KEY_NOT_FOUND
    assert verify(second, twice, RING, ctx).slot is SecretSlot.PREVIOUS
    assert verify(third, twice, RING, ctx).slot is SecretSlot.CURRENT


def test_revocation_beats_rotation_grace_and_is_idempotent() -> None:
    key, old = _issue()
    rotated, new = key.rotate(RING, now=T0, grace=timedelta(days=1))
    revoked = rotated.revoke(now=T0 + timedelta(minutes=1))
    assert revoked.revoke(now=T0 + timedelta(hours=1)).revoked_at == T0 + timedelta(minutes=1)
    assert _deny(new, revoked, _ctx()).reason == DenyReason.KEY_REVOKED
    assert _deny(old, revoked, _ctx()).reason == DenyReason.KEY_NOT_FOUND  # grace ended too


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda k: replace(k, revoked_at=T0), "KEY_REVOKED"),
        (lambda k: replace(k, deleted_at=T0), "KEY_REVOKED"),
        (lambda k: replace(k, expires_at=T0), "KEY_EXPIRED"),
    ],
)
def test_rotation_preconditions(mutate: object, reason: str) -> None:
    key, _ = _issue()
    assert callable(mutate)
    with pytest.raises(FailedPrecondition) as info:
        mutate(key).rotate(RING, now=T0, grace=timedelta(0))
    assert info.value.reason == reason


@pytest.mark.parametrize("grace", [timedelta(seconds=-1), timedelta(days=7, seconds=1)])
def test_rotation_grace_bounds(grace: timedelta) -> None:
    key, _ = _issue()
    with pytest.raises(InvalidArgument) as info:
        key.rotate(RING, now=T0, grace=grace)
    assert info.value.violations[0].field == "grace_period"


def test_old_pepper_version_verifies_and_asks_for_rehash() -> None:
    key, secret = _issue()
    ring2 = PepperRing({1: b"p" * 32, 2: b"q" * 32}, current=2)
    result = verify(secret, key, ring2, _ctx())
    assert result.needs_rehash
    rehashed = replace(key, secret_hash=ring2.hash(secret))
    assert not verify(secret, rehashed, ring2, _ctx()).needs_rehash
    assert rehashed.secret_hash in ring2.lookup_hashes(secret)


def test_ip_and_origin_allowlists_on_the_key() -> None:
    key, secret = _issue(
        allowed_cidrs=IpAllowlist.parse(["203.0.113.0/24", "2001:db8::/32"]),
        allowed_origins=OriginAllowlist.parse(["https://app.example"]),
    )
    browser = {"origin": "https://app.example"}
    verify(secret, key, RING, _ctx(client_ip="::ffff:203.0.113.9", **browser))
    verify(secret, key, RING, _ctx(client_ip="2001:db8::5", **browser))
    for ip in ("198.51.100.1", None, "not-an-ip"):
        assert _deny(secret, key, _ctx(client_ip=ip, **browser)).reason == DenyReason.IP_NOT_ALLOWED
    for origin in (None, "null", "https://evil.example"):
        assert _deny(secret, key, _ctx(origin=origin)).reason == DenyReason.ORIGIN_NOT_ALLOWED


def test_authenticate_only_when_no_scope_is_required() -> None:
    key, secret = _issue()
    verify(secret, key, RING, _ctx(required_scope=None))


def test_write_scope_covers_read_at_verify() -> None:
    key, secret = _issue(scopes=ScopeSet(["keys:write"]))
    verify(secret, key, RING, _ctx(required_scope=Scope("keys", "read")))


@pytest.mark.parametrize(
    ("overrides", "field", "exc"),
    [
        ({"name": "  "}, "name", InvalidArgument),
        ({"name": "x" * 101}, "name", InvalidArgument),
        ({"name": "bad\nname"}, "name", InvalidArgument),
        ({"scopes": ScopeSet()}, "scopes", InvalidArgument),
        ({"expires_at": T0}, "expire_time", InvalidArgument),
        ({"scopes": ScopeSet(["audit:read"])}, None, PermissionDenied),
    ],
)
def test_issue_validation(
    overrides: dict[str, object], field: str | None, exc: type[Exception]
) -> None:
    with pytest.raises(exc) as info:
        _issue(**overrides)
    if field is not None:
        assert isinstance(info.value, InvalidArgument)
        assert info.value.violations[0].field == field


def test_naive_datetimes_are_refused() -> None:
    key, secret = _issue()
    with pytest.raises(ValueError):
        verify(secret, key, RING, _ctx(now=datetime(2026, 9, 1)))
    with pytest.raises(ValueError):
        replace(key, expires_at=datetime(2026, 9, 1))


def test_rotation_by_another_user_rebinds_the_key_and_ends_the_old_secret_at_once() -> None:
    key, old = _issue(creator_aal="aal2")
    rotated, new = key.rotate(RING, now=T0, grace=timedelta(days=1), by="admin_9", by_aal="aal1")
    assert (rotated.created_by, rotated.creator_aal) == ("admin_9", "aal1")
    assert rotated.previous_secret_hash is None and rotated.previous_expires_at is None
    assert rotated.secret_hash is not None and RING.matches(new, rotated.secret_hash)
    # the creator rotating its own key keeps the grace and the creator
    mine, _ = key.rotate(RING, now=T0, grace=timedelta(days=1), by="user_1", by_aal="aal2")
    assert mine.created_by == "user_1" and mine.previous_expires_at == T0 + timedelta(days=1)
    assert verify(old, mine, RING, _ctx(now=T0)).slot is SecretSlot.PREVIOUS
