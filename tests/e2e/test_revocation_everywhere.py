"""Every revocation is refused at a second edge within a second (issue 10), outside-in.

Two edge processes in front of the same services, driven over the public HTTPS API only, so the
promise holds whatever the edge keeps inside (caches fed by a change stream, Redis fan-out, or
asking on every request). Each test grants something, makes the request succeed twice at edge B
(so any cache there is warm), makes the change through edge A, then polls edge B every
:data:`STEP` seconds:

* a request *sent* :data:`BOUND` seconds or more after the change was acknowledged must not
  succeed (:class:`StillAccepted` otherwise), and the refusal carries the documented status and
  problem ``code``; once refused it stays refused, and edge A refuses too;
* a caller the change does not touch still succeeds at edge B.

The clock starts when the change's HTTPS answer arrives: what a client holding a revocation
receipt can rely on (a password change spends most of its request in argon2id, which says nothing
about how fast an edge hears of it).

The whole module runs once without Redis and once with it (``RAILGUARD_TEST_REDIS_URL``, required
in CI; this module uses its own database number so its rate-limit counters meet no other stack's).
Pub/sub channels are not per database, so another stack's invalidations may reach these edges:
they name other keys and sessions, and can only make an edge ask again, never accept longer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from devstack import Stack, StackPorts
from testkit import redis_url
from testkit.totp import secret_from_uri, totp_code, wait_for_fresh_step

from .conftest import PASSWORD, Api, api_for, running_stack

pytestmark = pytest.mark.timeout(300)

BOUND = 1.0  # seconds: issue 10, "refused at every edge within 1 s"
STEP = 0.02  # seconds between two polls of edge B
REDIS_DB = 12  # test_rate_limits uses 14, the default CI URL 15
SERVICES = ("auth", "workspaces", "keys")


class StillAccepted(AssertionError):
    """A revoked grant still worked at an edge after the bound."""


def _own_redis_url() -> str:
    base = redis_url()
    return f"{base.rsplit('/', 1)[0]}/{REDIS_DB}" if base else ""


@pytest.fixture(scope="module", params=["no-redis", pytest.param("redis", marks=pytest.mark.redis)])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {"RAILGUARD_EDGE_RATE_LIMIT_SCALE": "100", "RAILGUARD_LOG_LEVEL": "WARNING"}
    if request.param == "redis":
        if not redis_url():
            pytest.skip("RAILGUARD_TEST_REDIS_URL not set")
        env["RAILGUARD_REDIS_URL"] = _own_redis_url()
    s = Stack(
        tmp_path_factory.mktemp(f"revocation-{request.param}"),
        ports=StackPorts.free(),
        services=SERVICES,
        env=env,
        edges=2,
    )
    with running_stack(s) as running:
        yield running


@dataclass
class Edges:
    a: Api  # where changes are made
    b: Api  # where they must be heard


@pytest.fixture
async def edges(stack: Stack) -> AsyncIterator[Edges]:
    async with api_for(stack) as a, api_for(stack, stack.edge_ports[1]) as b:
        yield Edges(a, b)


@dataclass
class Probe:
    """One request a caller makes again and again, at whichever edge."""

    method: str
    path: str
    token: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    async def send(self, edge: Api) -> tuple[int, str]:
        s, body, _ = await edge.call(self.method, self.path, self.token, headers=self.headers)
        return s, str(body.get("code", "")) if isinstance(body, dict) else ""

    def __repr__(self) -> str:  # never the secret
        return f"{self.method} {self.path}"


async def accepted(edge: Api, probe: Probe, times: int = 1) -> None:
    for _ in range(times):
        s, code = await probe.send(edge)
        assert s == 200, (probe, s, code)


async def warm(edges: Edges, *probes: Probe) -> None:
    """Each probe succeeds twice at edge B (and once at A), so whatever either caches is filled."""
    for probe in probes:
        await accepted(edges.b, probe, times=2)
        await accepted(edges.a, probe)


async def change(edge: Api, method: str, path: str, token: str, json: Any = None) -> float:
    """Make the change and return the instant its answer arrived (the bound counts from here).
    POST and PATCH send ``json`` (``{}`` by default); DELETE sends no body."""
    if json is None and method != "DELETE":
        json = {}
    s, body, _ = await edge.call(method, path, token, json=json)
    assert s == 200, body
    return time.monotonic()


async def refused_within_bound(
    edge: Api, probe: Probe, since: float, status: int, code: str
) -> float:
    """Poll ``probe`` at ``edge`` until refused with ``(status, code)``; return the delay.

    Inside the bound the edge may still hold the old view and forward the request; the service
    that owns the state then refuses it itself, with the same status and its own reason (e.g.
    ``WORKSPACE_NOT_FOUND`` for the edge's ``NOT_FOUND``). Past the bound only the edge's own
    refusal counts."""
    while True:
        sent = time.monotonic()
        s, got = await probe.send(edge)
        if (s, got) == (status, code):
            break
        if s != 200:
            assert s == status, f"{probe}: refused with {s} {got}"
        if sent - since >= BOUND:
            if s == 200:
                raise StillAccepted(
                    f"{probe} still succeeded {sent - since:.3f} s after the change"
                )
            raise AssertionError(f"{probe}: {s} {got}, not the edge's {code}, past the bound")
        await asyncio.sleep(STEP)
    s, got = await probe.send(edge)
    assert (s, got) == (status, code), f"{probe}: refused once, then {s} {got}"
    return sent - since


async def refused_everywhere(
    edges: Edges, probe: Probe, since: float, status: int, code: str
) -> None:
    await refused_within_bound(edges.b, probe, since, status, code)
    await refused_within_bound(edges.a, probe, since, status, code)


# ---- the world each test builds ------------------------------------------------------------


async def _workspace(api: Api, token: str, **fields: Any) -> str:
    s, ws, _ = await api.call(
        "POST", "/v1/workspaces", token, json={"displayName": "Revocations", **fields}
    )
    assert s == 200, ws
    return str(ws["name"])


async def _member(api: Api, owner: str, ws: str, role: str) -> tuple[str, str]:
    """A new user added to ``ws`` with ``role``: (their access token, the member's name)."""
    email, token, _ = await api.user()
    s, member, _ = await api.call(
        "POST", f"/v1/{ws}/members", owner, json={"email": email, "role": role}
    )
    assert s == 200, member
    return token, str(member["name"])


async def _key(api: Api, owner: str, ws: str) -> tuple[str, str]:
    """A new live key of ``ws``: (the secret, the key's resource name)."""
    body = {
        "displayName": "revocation",
        "environment": "ENVIRONMENT_LIVE",
        "scopes": ["workspaces:read"],
    }
    s, created, _ = await api.call("POST", f"/v1/{ws}/apiKeys", owner, json=body)
    assert s == 200, created
    return str(created["key"]), str(created["apiKey"]["name"])


def _with_key(ws: str, key: str) -> Probe:
    return Probe("GET", f"/v1/{ws}", headers={"X-API-Key": key})


async def _enroll_totp(api: Api, token: str) -> dict[str, Any]:
    """Confirm TOTP for the token's user; the answer carries fresh aal2 tokens."""
    s, begun, _ = await api.call("POST", "/v1/users/me/mfa/totp:beginEnrollment", token, json={})
    assert s == 200, begun
    secret = secret_from_uri(begun["otpauthUri"])
    await wait_for_fresh_step()
    s, done, _ = await api.call(
        "POST",
        "/v1/users/me/mfa/totp:confirmEnrollment",
        token,
        json={"code": totp_code(secret, steps=-1)},
    )
    assert s == 200, done
    return dict(done)


# ---- workspaces: roles, members, the workspace itself -----------------------------------------


async def test_a_lowered_role_is_refused_everywhere(edges: Edges) -> None:
    _, owner, _ = await edges.a.user()
    ws = await _workspace(edges.a, owner)
    admin, member = await _member(edges.a, owner, ws, "ROLE_ADMIN")
    admin_only = Probe("GET", f"/v1/{ws}/invitations", admin)  # ListInvitations: Admin or above
    await warm(edges, admin_only)
    since = await change(
        edges.a, "PATCH", f"/v1/{member}?updateMask=role", owner, {"role": "ROLE_USER"}
    )
    await refused_everywhere(edges, admin_only, since, 403, "ROLE_TOO_LOW")
    await accepted(edges.b, Probe("GET", f"/v1/{ws}/members", admin))  # a User now, still in
    await accepted(edges.b, Probe("GET", f"/v1/{ws}/invitations", owner))


async def test_a_removed_member_is_refused_everywhere(edges: Edges) -> None:
    _, owner, _ = await edges.a.user()
    ws = await _workspace(edges.a, owner)
    user, member = await _member(edges.a, owner, ws, "ROLE_USER")
    probe = Probe("GET", f"/v1/{ws}/members", user)
    await warm(edges, probe)
    since = await change(edges.a, "DELETE", f"/v1/{member}", owner)
    # exactly what a workspace one was never in looks like
    await refused_everywhere(edges, probe, since, 404, "NOT_FOUND")
    await accepted(edges.b, Probe("GET", f"/v1/{ws}/members", owner))


async def test_a_deleted_workspace_is_refused_everywhere(edges: Edges) -> None:
    _, owner, _ = await edges.a.user()
    ws = await _workspace(edges.a, owner)
    other_ws = await _workspace(edges.a, owner)
    user, _ = await _member(edges.a, owner, ws, "ROLE_USER")
    # ListMembers, not GetWorkspace: a deleted workspace stays readable for its undelete
    as_member = Probe("GET", f"/v1/{ws}/members", user)
    as_owner = Probe("GET", f"/v1/{ws}/members", owner)
    await warm(edges, as_member, as_owner)
    since = await change(edges.a, "DELETE", f"/v1/{ws}", owner)
    await refused_everywhere(edges, as_member, since, 404, "WORKSPACE_DELETED")
    await refused_everywhere(edges, as_owner, since, 404, "WORKSPACE_DELETED")
    await accepted(edges.b, Probe("GET", f"/v1/{other_ws}/members", owner))


async def shows_within_bound(edge: Api, probe: Probe, since: float, fresh: Any) -> None:
    """Poll ``probe`` at ``edge`` until its answer satisfies ``fresh``; an answer sent
    :data:`BOUND` seconds or more after the change that is not fresh fails. Once fresh, it stays."""
    while True:
        sent = time.monotonic()
        s, body, _ = await edge.call(probe.method, probe.path, probe.token)
        assert s == 200, (probe, s, body)
        if fresh(body):
            break
        assert sent - since < BOUND, f"{probe} still answered {body} {sent - since:.3f} s after"
        await asyncio.sleep(STEP)
    for _ in range(3):
        s, body, _ = await edge.call(probe.method, probe.path, probe.token)
        assert s == 200 and fresh(body), (probe, s, body)


async def test_a_workspace_read_follows_its_changes_everywhere(edges: Edges) -> None:
    """GetWorkspace may be answered by the edge from what its feed keeps fresh (issue 10): the
    answer is the backend's, a change forwarded by an edge is read back at once there, and every
    other edge shows it within the bound."""
    _, owner, _ = await edges.a.user()
    ws = await _workspace(edges.a, owner)
    user, member = await _member(edges.a, owner, ws, "ROLE_USER")
    as_owner, as_user = Probe("GET", f"/v1/{ws}", owner), Probe("GET", f"/v1/{ws}", user)
    first = (await edges.b.call("GET", f"/v1/{ws}", owner))[1]
    await warm(edges, as_owner, as_user)
    again = (await edges.b.call("GET", f"/v1/{ws}", owner))[1]
    assert again == first and first["displayName"] == "Revocations"
    s, body, _ = await edges.a.call(
        "PATCH", f"/v1/{ws}?updateMask=displayName", owner, json={"displayName": "Renamed"}
    )
    assert s == 200, body
    since = time.monotonic()
    s, body, _ = await edges.a.call("GET", f"/v1/{ws}", owner)
    assert (s, body["displayName"]) == (200, "Renamed"), "read your writes at the same edge"
    await shows_within_bound(edges.b, as_owner, since, lambda b: b["displayName"] == "Renamed")
    await shows_within_bound(edges.b, as_user, since, lambda b: b["displayName"] == "Renamed")
    assert (await edges.b.call("GET", f"/v1/{ws}", user))[1]["callerRole"] == "ROLE_USER"
    since = await change(
        edges.a, "PATCH", f"/v1/{member}?updateMask=role", owner, {"role": "ROLE_ADMIN"}
    )
    await shows_within_bound(edges.b, as_user, since, lambda b: b["callerRole"] == "ROLE_ADMIN")
    since = await change(edges.a, "DELETE", f"/v1/{ws}", owner)
    await shows_within_bound(
        edges.b, as_owner, since, lambda b: b["state"] == "WORKSPACE_STATE_DELETED"
    )


async def test_mfa_turned_on_refuses_aal1_sessions_everywhere(edges: Edges) -> None:
    _, owner_aal1, _ = await edges.a.user()
    owner = (await _enroll_totp(edges.a, owner_aal1))["tokens"]["accessToken"]
    ws = await _workspace(edges.a, owner)
    user, _ = await _member(edges.a, owner, ws, "ROLE_USER")
    probe = Probe("GET", f"/v1/{ws}/members", user)
    await warm(edges, probe)
    since = await change(
        edges.a, "PATCH", f"/v1/{ws}?updateMask=mfaRequired", owner, {"mfaRequired": True}
    )
    await refused_everywhere(edges, probe, since, 403, "MFA_REQUIRED")
    await accepted(edges.b, Probe("GET", f"/v1/{ws}/members", owner))  # aal2


# ---- API keys -------------------------------------------------------------------------------


async def test_a_revoked_key_is_refused_everywhere(edges: Edges) -> None:
    _, owner, _ = await edges.a.user()
    ws = await _workspace(edges.a, owner)
    key, name = await _key(edges.a, owner, ws)
    other, _ = await _key(edges.a, owner, ws)
    await warm(edges, _with_key(ws, key), _with_key(ws, other))
    since = await change(edges.a, "POST", f"/v1/{name}:revoke", owner)
    await refused_everywhere(edges, _with_key(ws, key), since, 401, "KEY_REVOKED")
    await accepted(edges.b, _with_key(ws, other))


async def test_a_rotated_out_secret_is_refused_everywhere(edges: Edges) -> None:
    _, owner, _ = await edges.a.user()
    ws = await _workspace(edges.a, owner)
    old, name = await _key(edges.a, owner, ws)
    await warm(edges, _with_key(ws, old))
    s, rotated, _ = await edges.a.call(
        "POST", f"/v1/{name}:rotate", owner, json={"gracePeriod": "0s"}
    )
    assert s == 200, rotated
    since = time.monotonic()
    # a zero grace keeps no hash of the old secret: it is simply unknown (docs/api-keys.md)
    await refused_everywhere(edges, _with_key(ws, old), since, 401, "KEY_NOT_FOUND")
    await accepted(edges.b, _with_key(ws, rotated["key"]), times=2)


async def test_a_deleted_key_is_refused_everywhere(edges: Edges) -> None:
    _, owner, _ = await edges.a.user()
    ws = await _workspace(edges.a, owner)
    key, name = await _key(edges.a, owner, ws)
    other, _ = await _key(edges.a, owner, ws)
    await warm(edges, _with_key(ws, key), _with_key(ws, other))
    since = await change(edges.a, "DELETE", f"/v1/{name}", owner)
    await refused_everywhere(edges, _with_key(ws, key), since, 401, "KEY_NOT_FOUND")
    await accepted(edges.b, _with_key(ws, other))


# ---- sessions: an ended session's access tokens stop working, not at their expiry ------------


async def _two_sessions(api: Api) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A user with a workspace and two sessions: (the workspace, tokens of each session)."""
    email, token, first = await api.user()
    ws = await _workspace(api, token)
    return ws, first, await api.login(email)


def _in(ws: str, tokens: dict[str, Any]) -> Probe:
    """A workspace call: the edge authorizes it without the auth service's help."""
    return Probe("GET", f"/v1/{ws}/members", str(tokens["accessToken"]))


async def test_logout_ends_the_sessions_access_tokens_everywhere(edges: Edges) -> None:
    ws, ended, kept = await _two_sessions(edges.a)
    await warm(edges, _in(ws, ended), _in(ws, kept))
    since = await change(edges.a, "POST", "/v1/auth:logout", ended["accessToken"])
    await refused_everywhere(edges, _in(ws, ended), since, 401, "SESSION_REVOKED")
    await accepted(edges.b, _in(ws, kept))


async def test_revoking_another_session_ends_its_access_tokens_everywhere(edges: Edges) -> None:
    ws, kept, ended = await _two_sessions(edges.a)
    s, listed, _ = await edges.a.call("GET", "/v1/users/me/sessions", kept["accessToken"])
    assert s == 200, listed
    others = [x["name"] for x in listed["sessions"] if not x.get("current")]
    assert len(others) == 1, listed
    await warm(edges, _in(ws, ended), _in(ws, kept))
    since = await change(edges.a, "POST", f"/v1/{others[0]}:revoke", kept["accessToken"])
    await refused_everywhere(edges, _in(ws, ended), since, 401, "SESSION_REVOKED")
    await accepted(edges.b, _in(ws, kept))


async def test_a_password_change_ends_the_other_sessions_everywhere(edges: Edges) -> None:
    ws, kept, ended = await _two_sessions(edges.a)
    await warm(edges, _in(ws, ended), _in(ws, kept))
    since = await change(
        edges.a,
        "POST",
        "/v1/users/me:changePassword",
        kept["accessToken"],
        {"currentPassword": PASSWORD, "newPassword": "an entirely new passphrase 7"},
    )
    await refused_everywhere(edges, _in(ws, ended), since, 401, "SESSION_REVOKED")
    await accepted(edges.b, _in(ws, kept))


async def test_refresh_token_reuse_ends_the_session_everywhere(edges: Edges) -> None:
    ws, stolen, kept = await _two_sessions(edges.a)
    current = stolen
    for _ in range(2):  # twice: the stolen token's child is no longer the newest (no grace)
        s, refreshed, _ = await edges.a.call(
            "POST", "/v1/auth:refresh", json={"refreshToken": current["refreshToken"]}
        )
        assert s == 200, refreshed
        current = refreshed["tokens"]
    await warm(edges, _in(ws, current), _in(ws, stolen), _in(ws, kept))
    s, body, _ = await edges.a.call(
        "POST", "/v1/auth:refresh", json={"refreshToken": stolen["refreshToken"]}
    )
    assert s == 401, body  # the reuse: the whole session (token family) is revoked
    since = time.monotonic()
    await refused_everywhere(edges, _in(ws, current), since, 401, "SESSION_REVOKED")
    await refused_everywhere(edges, _in(ws, stolen), since, 401, "SESSION_REVOKED")
    await accepted(edges.b, _in(ws, kept))


async def test_totp_enrolment_ends_the_aal1_sessions_everywhere(edges: Edges) -> None:
    ws, enrolling, other = await _two_sessions(edges.a)
    await warm(edges, _in(ws, enrolling), _in(ws, other))
    done = await _enroll_totp(edges.a, enrolling["accessToken"])
    since = time.monotonic()
    await refused_everywhere(edges, _in(ws, enrolling), since, 401, "SESSION_REVOKED")
    await refused_everywhere(edges, _in(ws, other), since, 401, "SESSION_REVOKED")
    await accepted(edges.b, _in(ws, done["tokens"]), times=2)
