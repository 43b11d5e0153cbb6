"""The keys use cases against in-memory fakes: roles, ceilings, lifecycle and the verify order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from keys_service.domain import (
    KeyEnvironment,
    KeyState,
    PepperRing,
    Role,
    ScopeGrant,
    ScopePolicy,
    SecretSlot,
    generate_key,
)
from keys_service.usecases import Actor, KeyEvent, KeysDeps, KeysService, KeyView
from servicekit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RailguardError,
    Unauthenticated,
)
from servicekit.usecase import Collaborators
from testkit import FakeClock

from .fakes_keys import FakeKeys, FakePublisher, FakeUow, FakeUsage, FakeWorkspaces

WS = "ws_a"
RING = PepperRing({1: b"1" * 32}, current=1)
POLICY = ScopePolicy(
    [
        ScopeGrant("keys:read", Role.USER, "/k/Get"),
        ScopeGrant("keys:write", Role.USER, "/k/Create"),
        ScopeGrant("members:read", Role.USER, "/w/ListMembers"),
        ScopeGrant("members:write", Role.ADMIN, "/w/CreateMember"),
        ScopeGrant("billing:write", Role.OWNER, "/w/ChangePlan"),
    ]
)
ALICE = Actor("alice", Role.USER)
BOB = Actor("bob", Role.USER)
ADMIN = Actor("ada", Role.ADMIN)


@dataclass
class Harness:
    service: KeysService
    keys: FakeKeys
    workspaces: FakeWorkspaces
    publisher: FakePublisher
    usage: FakeUsage
    clock: FakeClock

    async def create(self, actor: Actor = ALICE, **overrides: object) -> KeyView:
        args: dict[str, object] = {
            "name": "CI",
            "environment": "live",
            "scopes": ["keys:read"],
            "allowed_cidrs": [],
            "allowed_origins": [],
            "expires_at": None,
            "request_id": "",
        }
        args.update(overrides)
        return await self.service.create(actor, WS, **args)  # type: ignore[arg-type]

    async def verify(
        self, key: str, *, ip: str = "203.0.113.9", origin: str = "", scope: str = "keys:read"
    ) -> object:
        return await self.service.verify(key, ip, origin, scope)

    async def deny(self, key: str, **kw: str) -> RailguardError:
        with pytest.raises(RailguardError) as info:
            await self.verify(key, **kw)
        return info.value


def _harness(ring: PepperRing = RING, keys: FakeKeys | None = None) -> Harness:
    keys = keys or FakeKeys()
    workspaces, publisher, usage, clock = (
        FakeWorkspaces(),
        FakePublisher(),
        FakeUsage(),
        FakeClock(),
    )
    counter = iter(range(1, 10_000))
    service = KeysService(
        KeysDeps(
            Collaborators(
                uow=lambda: FakeUow(keys), clock=clock, new_id=lambda: f"key{next(counter):04d}"
            ),
            ring,
            POLICY,
            workspaces,
            publisher,
            usage,
        )
    )
    return Harness(service, keys, workspaces, publisher, usage, clock)


@pytest.fixture
def h() -> Harness:
    return _harness()


# ---- create: role limits and the scope ceiling -----------------------------------------------


async def test_create_shows_the_secret_once_and_stores_only_a_hash(h: Harness) -> None:
    view = await h.create()
    assert view.secret is not None and view.secret.startswith("rg_live_")
    assert view.state is KeyState.ACTIVE
    stored = h.keys.rows[view.key.id]
    assert view.secret not in repr(stored)
    assert stored.display_prefix == view.secret[:12]
    got = await h.service.get(ALICE, WS, view.key.id)
    assert got.secret is None


async def test_a_user_cannot_create_a_key_above_its_role(h: Harness) -> None:
    with pytest.raises(PermissionDenied) as err:
        await h.create(scopes=["keys:read", "members:write"])
    assert err.value.reason == "SCOPE_EXCEEDS_CREATOR"
    assert "members:write" in err.value.message
    admin_key = await h.create(ADMIN, scopes=["members:write"])
    assert admin_key.key.scopes.as_strings() == ["members:write"]
    with pytest.raises(PermissionDenied):
        await h.create(ADMIN, scopes=["billing:write"])
    await h.create(Actor("olga", Role.OWNER), scopes=["billing:write"])


async def test_an_api_key_caller_cannot_exceed_its_own_scopes(h: Harness) -> None:
    robot = Actor("ada", Role.ADMIN, key_scopes=("keys:write",))
    with pytest.raises(PermissionDenied) as err:
        await h.create(robot, scopes=["members:write"])
    assert err.value.reason == "SCOPE_EXCEEDS_CREATOR"
    view = await h.create(robot, scopes=["keys:read", "keys:write"])  # write implies read
    assert view.key.created_by == "ada"


async def test_create_validates_input(h: Harness) -> None:
    with pytest.raises(InvalidArgument) as err:
        await h.create(scopes=["keys:delete_everything"])
    assert err.value.reason == "SCOPE_INVALID"
    assert err.value.violations[0].field == "api_key.scopes[0]"
    with pytest.raises(InvalidArgument) as err:
        await h.create(environment="")
    assert err.value.reason == "ENVIRONMENT_INVALID"
    with pytest.raises(InvalidArgument) as err:
        await h.create(name=" ")
    assert err.value.violations[0].field == "api_key.display_name"
    with pytest.raises(InvalidArgument) as err:
        await h.create(allowed_cidrs=["10.1.2.3/8"])
    assert err.value.reason == "CIDR_INVALID"
    with pytest.raises(InvalidArgument) as err:
        await h.create(expires_at=h.clock.now())
    assert err.value.reason == "EXPIRY_INVALID"


async def test_create_is_idempotent_without_showing_the_secret_twice(h: Harness) -> None:
    first = await h.create(request_id="req-1")
    again = await h.create(request_id="req-1")
    assert again.key.id == first.key.id
    assert first.secret and again.secret is None
    assert len(h.keys.rows) == 1


async def test_mutations_are_refused_in_a_deleted_workspace(h: Harness) -> None:
    view = await h.create()
    h.workspaces.deleted.add(WS)
    with pytest.raises(FailedPrecondition) as err:
        await h.create()
    assert err.value.reason == "WORKSPACE_DELETED"
    for op in (h.service.revoke, h.service.delete):
        with pytest.raises(FailedPrecondition):
            await op(ALICE, WS, view.key.id)
    with pytest.raises(FailedPrecondition):
        await h.service.rotate(ALICE, WS, view.key.id, timedelta(0))


# ---- visibility --------------------------------------------------------------------------------


async def test_a_user_sees_only_its_own_keys_an_admin_sees_all(h: Harness) -> None:
    alice_key = await h.create(ALICE)
    await h.create(BOB)
    with pytest.raises(NotFound):
        await h.service.get(BOB, WS, alice_key.key.id)
    with pytest.raises(NotFound):
        await h.service.revoke(BOB, WS, alice_key.key.id)
    assert (await h.service.get(ADMIN, WS, alice_key.key.id)).key.id == alice_key.key.id
    mine, _ = await h.service.list(ALICE, WS, 0, "", False)
    everyone, _ = await h.service.list(ADMIN, WS, 0, "", False)
    assert [v.key.created_by for v in mine] == ["alice"]
    assert sorted(v.key.created_by for v in everyone) == ["alice", "bob"]


async def test_list_paginates(h: Harness) -> None:
    for _ in range(5):
        await h.create()
    page, token = await h.service.list(ALICE, WS, 2, "", False)
    seen = [v.key.id for v in page]
    while token:
        page, token = await h.service.list(ALICE, WS, 2, token, False)
        seen += [v.key.id for v in page]
    assert seen == sorted(h.keys.rows)
    with pytest.raises(InvalidArgument):
        await h.service.list(ADMIN, WS, 2, "bogus", False)


# ---- update ------------------------------------------------------------------------------------


async def test_update_keeps_the_scope_ceiling_of_actor_and_creator(h: Harness) -> None:
    view = await h.create(ALICE)
    with pytest.raises(PermissionDenied):
        await h.service.update(ALICE, WS, view.key.id, {"scopes": ["members:write"]})
    h.workspaces.roles[("alice", WS)] = Role.USER
    # an Admin may edit Alice's key but not lift it above Alice's own rights
    with pytest.raises(PermissionDenied) as err:
        await h.service.update(ADMIN, WS, view.key.id, {"scopes": ["members:write"]})
    assert err.value.reason == "SCOPE_EXCEEDS_CREATOR"
    updated = await h.service.update(
        ADMIN, WS, view.key.id, {"scopes": ["keys:write"], "display_name": "deploys"}
    )
    assert updated.key.scopes.as_strings() == ["keys:write"]
    assert updated.key.name == "deploys"
    assert h.publisher.events[-1] == (view.key.id, KeyEvent.UPDATED)


async def test_update_refuses_bad_masks_and_finished_keys(h: Harness) -> None:
    view = await h.create()
    with pytest.raises(InvalidArgument):
        await h.service.update(ALICE, WS, view.key.id, {"environment": "test"})
    await h.service.revoke(ALICE, WS, view.key.id)
    with pytest.raises(FailedPrecondition) as err:
        await h.service.update(ALICE, WS, view.key.id, {"display_name": "x"})
    assert err.value.reason == "KEY_REVOKED"


async def test_shortening_expiry_also_caps_a_rotation_grace(h: Harness) -> None:
    view = await h.create()
    await h.service.rotate(ALICE, WS, view.key.id, timedelta(days=2))
    soon = h.clock.now() + timedelta(hours=1)
    updated = await h.service.update(ALICE, WS, view.key.id, {"expire_time": soon})
    assert updated.key.previous_expires_at == soon


# ---- rotation, revocation, deletion ------------------------------------------------------------


async def test_rotation_with_zero_grace_ends_the_old_secret_at_once(h: Harness) -> None:
    view = await h.create()
    assert view.secret
    rotated = await h.service.rotate(ALICE, WS, view.key.id, timedelta(0))
    assert rotated.secret and rotated.secret != view.secret
    assert rotated.key.previous_secret_hash is None
    err = await h.deny(view.secret)
    assert err.reason == "KEY_NOT_FOUND"
    await h.verify(rotated.secret)
    assert h.publisher.events[-1] == (view.key.id, KeyEvent.ROTATED)


async def test_rotation_grace_keeps_the_old_secret_until_the_exact_instant(h: Harness) -> None:
    view = await h.create()
    assert view.secret
    rotated = await h.service.rotate(ALICE, WS, view.key.id, timedelta(hours=1))
    assert rotated.secret
    old = await h.service.verify(view.secret, "", "", "keys:read")
    assert old.slot is SecretSlot.PREVIOUS
    assert old.secret_expires_at == h.clock.now() + timedelta(hours=1)
    h.clock.advance(hours=1)
    err = await h.deny(view.secret)
    assert (type(err), err.reason) == (Unauthenticated, "KEY_ROTATED")
    new = await h.service.verify(rotated.secret, "", "", "keys:read")
    assert new.slot is SecretSlot.CURRENT


async def test_rotation_grace_is_bounded(h: Harness) -> None:
    view = await h.create()
    with pytest.raises(InvalidArgument):
        await h.service.rotate(ALICE, WS, view.key.id, timedelta(days=8))
    with pytest.raises(InvalidArgument):
        await h.service.rotate(ALICE, WS, view.key.id, timedelta(seconds=-1))


async def test_revoke_is_final_idempotent_and_published(h: Harness) -> None:
    view = await h.create()
    assert view.secret
    revoked = await h.service.revoke(ALICE, WS, view.key.id)
    assert revoked.state is KeyState.REVOKED
    first = revoked.key.revoked_at
    h.clock.advance(60)
    again = await h.service.revoke(ALICE, WS, view.key.id)
    assert again.key.revoked_at == first
    assert (await h.deny(view.secret)).reason == "KEY_REVOKED"
    assert (view.key.id, KeyEvent.REVOKED) in h.publisher.events
    with pytest.raises(FailedPrecondition):
        await h.service.rotate(ALICE, WS, view.key.id, timedelta(0))


async def test_delete_and_undelete(h: Harness) -> None:
    view = await h.create()
    assert view.secret
    deleted = await h.service.delete(ALICE, WS, view.key.id)
    assert deleted.state is KeyState.DELETED
    assert (await h.deny(view.secret)).reason == "KEY_NOT_FOUND"
    listed, _ = await h.service.list(ALICE, WS, 0, "", False)
    assert listed == []
    listed, _ = await h.service.list(ALICE, WS, 0, "", True)
    assert [v.state for v in listed] == [KeyState.DELETED]
    restored = await h.service.undelete(ALICE, WS, view.key.id)
    assert restored.state is KeyState.ACTIVE
    await h.verify(view.secret)
    with pytest.raises(FailedPrecondition) as err:
        await h.service.undelete(ALICE, WS, view.key.id)
    assert err.value.reason == "KEY_NOT_DELETED"


# ---- verify ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "KEY_PREFIX_INVALID"),
        ("sk_live_abc", "KEY_PREFIX_INVALID"),
        ("rg_prod_" + "A" * 49, "KEY_ENVIRONMENT_INVALID"),
        ("rg_live_short", "KEY_LENGTH_INVALID"),
        ("rg_live_" + "!" * 49, "KEY_CHARSET_INVALID"),
    ],
)
async def test_malformed_keys_never_reach_the_database(h: Harness, text: str, reason: str) -> None:
    err = await h.deny(text)
    assert (type(err), err.reason) == (Unauthenticated, reason)
    assert h.keys.reads == 0 and h.workspaces.calls == 0


async def test_a_typo_fails_the_checksum_before_any_read(h: Harness) -> None:
    view = await h.create()
    assert view.secret
    reads, calls = h.keys.reads, h.workspaces.calls
    typo = view.secret[:20] + ("a" if view.secret[20] != "a" else "b") + view.secret[21:]
    assert (await h.deny(typo)).reason == "KEY_CHECKSUM_MISMATCH"
    assert (h.keys.reads, h.workspaces.calls) == (reads, calls)


async def test_an_unknown_well_formed_key_costs_one_read(h: Harness) -> None:
    unknown = generate_key(KeyEnvironment.TEST).reveal()
    assert (await h.deny(unknown)).reason == "KEY_NOT_FOUND"
    assert h.keys.reads == 1 and h.workspaces.calls == 0


async def test_key_checks_come_before_the_workspace_is_asked(h: Harness) -> None:
    view = await h.create()
    assert view.secret
    await h.service.revoke(ALICE, WS, view.key.id)
    h.workspaces.deleted.add(WS)
    calls = h.workspaces.calls
    assert (await h.deny(view.secret)).reason == "KEY_REVOKED"
    assert h.workspaces.calls == calls


async def test_a_key_in_a_deleted_workspace_is_forbidden(h: Harness) -> None:
    view = await h.create()
    assert view.secret
    h.workspaces.deleted.add(WS)
    err = await h.deny(view.secret)
    assert (type(err), err.reason) == (PermissionDenied, "WORKSPACE_DELETED")


async def test_expiry_is_exact(h: Harness) -> None:
    expiry = h.clock.now() + timedelta(hours=1)
    view = await h.create(expires_at=expiry)
    assert view.secret
    h.clock.set(expiry - timedelta(microseconds=1))
    await h.verify(view.secret)
    h.clock.set(expiry)
    err = await h.deny(view.secret)
    assert (type(err), err.reason) == (Unauthenticated, "KEY_EXPIRED")
    assert (await h.service.get(ALICE, WS, view.key.id)).state is KeyState.EXPIRED


async def test_ipv6_allowlist(h: Harness) -> None:
    view = await h.create(allowed_cidrs=["2001:db8:abcd::/48", "192.0.2.0/24"])
    assert view.secret
    await h.verify(view.secret, ip="2001:db8:abcd:12::1")
    await h.verify(view.secret, ip="::ffff:192.0.2.77")  # IPv4-mapped IPv6 is the IPv4 address
    for ip in ("2001:db8:abce::1", "198.51.100.1", "", "not-an-ip"):
        err = await h.deny(view.secret, ip=ip)
        assert (type(err), err.reason) == (PermissionDenied, "IP_NOT_ALLOWED")


async def test_origin_and_scope_checks(h: Harness) -> None:
    server = await h.create()
    browser = await h.create(allowed_origins=["https://app.example.com"])
    assert server.secret and browser.secret
    err = await h.deny(server.secret, origin="https://evil.example")
    assert err.reason == "ORIGIN_NOT_ALLOWED"
    await h.verify(browser.secret, origin="https://APP.example.com:443")
    assert (await h.deny(browser.secret)).reason == "ORIGIN_NOT_ALLOWED"
    err = await h.deny(server.secret, scope="keys:write")
    assert (type(err), err.reason) == (PermissionDenied, "SCOPE_NOT_GRANTED")
    with pytest.raises(InvalidArgument) as bad:
        await h.verify(server.secret, scope="")
    assert bad.value.reason == "REQUIRED_SCOPE_INVALID"


async def test_last_used_is_buffered_not_written_per_request(h: Harness) -> None:
    view = await h.create()
    assert view.secret
    await h.verify(view.secret)
    assert [k for k, _ in h.usage.recorded] == [view.key.id]
    assert h.keys.touches == []  # nothing written on the request path
    await h.keys.touch_many([(view.key.id, h.clock.now())])  # the buffer flushed
    h.clock.advance(30)
    await h.verify(view.secret)
    assert len(h.usage.recorded) == 1  # younger than a minute: not recorded again
    h.clock.advance(31)
    await h.verify(view.secret)
    assert len(h.usage.recorded) == 2


async def test_a_key_under_an_old_pepper_is_rehashed_on_use() -> None:
    old = _harness()
    view = await old.create()
    assert view.secret
    ring = PepperRing({1: b"1" * 32, 2: b"2" * 32}, current=2)
    new = _harness(ring, old.keys)
    await new.verify(view.secret)
    assert new.keys.rows[view.key.id].secret_hash.pepper_version == 2
    await new.verify(view.secret)
    assert new.keys.rehashes == 1


async def test_list_scopes_comes_from_the_policy(h: Harness) -> None:
    rules = h.service.list_scopes()
    assert [str(r.scope) for r in rules] == [
        "billing:write",
        "keys:read",
        "keys:write",
        "members:read",
        "members:write",
    ]
