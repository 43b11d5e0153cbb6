"""A workspace that requires verified members refuses tokens without ``email_verified``."""

from __future__ import annotations

import pytest
from edge_service.policy import AccessView, authorize
from railguard.access.v1 import access_pb2
from servicekit.context import Principal
from servicekit.errors import PermissionDenied
from testkit.fakes import FixedAccess


def _access(required: bool) -> FixedAccess[AccessView]:
    return FixedAccess(AccessView(True, True, access_pb2.ROLE_USER, False, False, 0, required))


RULE = access_pb2.AccessRule(min_role=access_pb2.ROLE_USER)


async def test_unverified_members_are_refused_only_where_required() -> None:
    unverified = Principal(user_id="u1", session_id="s1")
    verified = Principal(user_id="u1", session_id="s1", email_verified=True)
    with pytest.raises(PermissionDenied) as err:
        await authorize(RULE, unverified, "w1", _access(True))
    assert err.value.reason == "EMAIL_NOT_VERIFIED"
    assert (await authorize(RULE, verified, "w1", _access(True)))[0].workspace_id == "w1"
    assert (await authorize(RULE, unverified, "w1", _access(False)))[0].workspace_id == "w1"


async def test_api_keys_and_low_assurance_rules_are_not_held_to_it() -> None:
    key = Principal(user_id="u1", api_key_id="k1", workspace_id="w1", scopes=("x:read",))
    rule = access_pb2.AccessRule(min_role=access_pb2.ROLE_USER, scope="x:read")
    assert await authorize(rule, key, "w1", _access(True))
    low = access_pb2.AccessRule(min_role=access_pb2.ROLE_USER, allow_low_assurance=True)
    assert await authorize(low, Principal(user_id="u1"), "w1", _access(True))
