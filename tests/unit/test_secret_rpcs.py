"""Every RPC that hands out secret material is marked, and each one obeys the grant rule.

The rule (docs/auth.md): a caller never obtains a secret, or a key, whose effective rights exceed
its own. Detection does not trust the marks alone: every response field (walked through nested
messages) whose name looks secret must be marked ``(railguard.access.v1.secret)`` or be listed
below as not secret, every RPC with a secret field must carry ``returns_secret``, and the marked
set must equal the reviewed list. Each marked RPC is then exercised against the rule by the guard
of its kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from keys_service.domain import IpAllowlist, PepperRing, Role, ScopeGrant, ScopePolicy
from keys_service.usecases import Actor, KeysDeps, KeysService
from railguard.access.v1 import access_pb2
from servicekit.access import RpcInfo, describe_services
from servicekit.errors import PermissionDenied
from servicekit.usecase import Collaborators
from testkit import FakeClock

from .keys.fakes_keys import FakeKeys, FakePublisher, FakeUow, FakeUsage, FakeWorkspaces
from .test_contracts import _all_contract_modules

_SECRETISH = re.compile(r"secret|token|key|password|pin|code|credential|value|otpauth", re.I)

NOT_SECRET = {
    # text fields whose names look secret but hold identifiers, labels or masked material
    "railguard.auth.v1.TokenPair.token_type",
    "railguard.auth.v1.VerifyDeploymentPinResponse.token_type",
    "railguard.keys.v1.VerifyApiKeyResponse.key_id",
    "railguard.credentials.v1.Credential.masked_value",
    "railguard.credentials.v1.Credential.value",  # INPUT_ONLY: never set in a response
    "railguard.workspaces.v1.AuditEvent.MetadataEntry.key",  # audit metadata never holds one
    "railguard.workspaces.v1.AuditEvent.MetadataEntry.value",
    # which thing changed: a workspace/user pair, a workspace, an API key or a session id (the id
    # a token's `sid` claim carries, never the token); the change feed names, it never carries
    "railguard.watch.v1.Change.key",
}

# RPC → how it obeys the rule. "grant": the secret is an API key, checked by the keys service's
# grant rule (exercised below). "own": the secret is the caller's own session, factor or codes,
# obtained by proving an identity that already holds those rights; no API key may call it.
# "internal": only the named mTLS callers reach it. "artifact": the secret grants one narrow
# thing (one trigger's deliveries, one deployment's UI) that only an Admin, who already manages
# it, may create; a restricted API key is refused it (KEY_RESTRICTED, exercised by
# tests/integration/{auth,credentials}/test_*_restricted_key.py and tests/e2e/test_key_rights.py).
EXPECTED = {
    "/railguard.keys.v1.KeysService/CreateApiKey": "grant",
    "/railguard.keys.v1.KeysService/RotateApiKey": "grant",
    "/railguard.auth.v1.AuthService/Login": "own",
    "/railguard.auth.v1.AuthService/RefreshToken": "own",
    "/railguard.auth.v1.AuthService/VerifyMfaChallenge": "own",
    "/railguard.auth.v1.AuthService/BeginTotpEnrollment": "own",
    "/railguard.auth.v1.AuthService/ConfirmTotpEnrollment": "own",
    "/railguard.auth.v1.AuthService/RegenerateRecoveryCodes": "own",
    "/railguard.auth.v1.AuthService/VerifyDeploymentPin": "own",
    "/railguard.auth.v1.AuthService/SetDeploymentPin": "artifact",
    "/railguard.credentials.v1.CredentialsService/UseCredential": "internal",
    "/railguard.credentials.v1.CredentialsService/CreateWebhookTrigger": "artifact",
    "/railguard.credentials.v1.CredentialsService/RotateWebhookTriggerToken": "artifact",
}
CALLER_CHOSEN = {"/railguard.auth.v1.AuthService/SetDeploymentPin"}
"""Secrets the caller supplies (a PIN) rather than receives: marked, with no secret response."""


def _rpcs() -> list[RpcInfo]:
    return describe_services(_all_contract_modules())


def _fields(message: Descriptor, seen: frozenset[str] = frozenset()) -> Iterator[FieldDescriptor]:
    """Every field of ``message`` and, recursively, of its message-typed fields."""
    if message.full_name in seen or message.full_name.startswith("google."):
        return
    for f in message.fields:
        yield f
        if f.message_type is not None:
            yield from _fields(f.message_type, seen | {message.full_name})


_TEXT = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES)


def _looks_secret(f: FieldDescriptor) -> bool:
    """A text field whose name suggests secret material (page tokens are cursors, not secrets)."""
    return f.type in _TEXT and f.name != "next_page_token" and bool(_SECRETISH.search(f.name))


def _is_secret(f: FieldDescriptor) -> bool:
    return bool(f.GetOptions().Extensions[access_pb2.secret])


def test_every_secret_looking_response_field_is_marked_or_reviewed() -> None:
    unreviewed = sorted(
        {
            f.full_name
            for info in _rpcs()
            for f in _fields(info.method.output_type)
            if _looks_secret(f) and not _is_secret(f) and f.full_name not in NOT_SECRET
        }
    )
    assert unreviewed == [], (
        f"mark (railguard.access.v1.secret) or list as not secret: {unreviewed}"
    )


def test_an_rpc_returns_a_secret_exactly_when_it_is_marked() -> None:
    for info in _rpcs():
        assert info.rule is not None
        carries = any(_is_secret(f) for f in _fields(info.method.output_type))
        expected = carries or info.full_method in CALLER_CHOSEN
        assert info.rule.returns_secret == expected, info.full_method


def test_the_marked_set_is_the_reviewed_one() -> None:
    marked = {i.full_method for i in _rpcs() if i.rule is not None and i.rule.returns_secret}
    assert marked == set(EXPECTED)


# ---- each marked RPC against the rule ---------------------------------------------------------

_POLICY = ScopePolicy(
    [
        ScopeGrant("keys:write", Role.USER, "/k/Create"),
        ScopeGrant("members:write", Role.ADMIN, "/w/CreateMember"),
    ]
)


def _keys_service() -> tuple[KeysService, FakeKeys]:
    keys = FakeKeys()
    service = KeysService(
        KeysDeps(
            Collaborators(uow=lambda: FakeUow(keys), clock=FakeClock()),
            PepperRing({1: b"1" * 32}, current=1),
            _POLICY,
            FakeWorkspaces(),
            FakePublisher(),
            FakeUsage(),
        )
    )
    return service, keys


async def _lower_caller_cannot_obtain_a_wider_key(method: str) -> None:
    """A ``keys:write`` key limited to 10/8 must not get a secret without that limit."""
    service, keys = _keys_service()
    admin = Actor("ada", Role.ADMIN, aal="aal2")
    base = {"environment": "live", "allowed_origins": [], "expires_at": None, "request_id": ""}
    wide = await service.create(
        admin, "ws", name="wide", scopes=["members:write"], allowed_cidrs=[], **base
    )  # type: ignore[arg-type]
    narrow = await service.create(
        admin, "ws", name="narrow", scopes=["keys:write"], allowed_cidrs=["10.0.0.0/8"], **base
    )  # type: ignore[arg-type]
    robot = Actor("ada", Role.ADMIN, ("keys:write",), key_id=narrow.key.id, aal="aal2")
    with pytest.raises(PermissionDenied):
        if method.endswith("/CreateApiKey"):
            await service.create(
                robot, "ws", name="child", scopes=["keys:write"], allowed_cidrs=[], **base
            )  # type: ignore[arg-type]
        else:
            await service.rotate(robot, "ws", wide.key.id, timedelta(0))
    assert keys.rows[narrow.key.id].allowed_cidrs == IpAllowlist.parse(["10.0.0.0/8"])


@pytest.mark.parametrize("method", sorted(EXPECTED))
async def test_each_secret_rpc_obeys_the_rule(method: str) -> None:
    info = next(i for i in _rpcs() if i.full_method == method)
    rule = info.rule
    assert rule is not None
    kind = EXPECTED[method]
    if kind == "grant":
        await _lower_caller_cannot_obtain_a_wider_key(method)
    elif kind == "own":
        # no API key can trade itself for a session, a factor or codes
        assert not rule.scope, method
        assert not rule.internal_callers, method
    elif kind == "internal":
        assert rule.internal_callers and not rule.scope and not info.http, method
    else:
        assert kind == "artifact"
        assert rule.min_role >= access_pb2.ROLE_ADMIN, method
        assert rule.scope.endswith(":write"), method


def test_the_not_secret_list_names_real_fields() -> None:
    looks = {
        f.full_name for i in _rpcs() for f in _fields(i.method.output_type) if _looks_secret(f)
    }
    assert NOT_SECRET - looks == set()
