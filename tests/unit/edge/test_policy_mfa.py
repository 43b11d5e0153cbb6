"""The edge's MFA enforcement reaches API keys: a key carries its creator's recorded assurance."""

from __future__ import annotations

import pytest
from edge_service.policy import AccessView, authorize
from railguard.access.v1 import access_pb2
from servicekit.context import Principal
from servicekit.errors import PermissionDenied
from testkit.fakes import FixedAccess


def _access(mfa_required: bool) -> FixedAccess[AccessView]:
    return FixedAccess(AccessView(True, True, access_pb2.ROLE_OWNER, False, mfa_required, 1))


RULE = access_pb2.AccessRule(min_role=access_pb2.ROLE_USER, scope="workspaces:read")


def _key(aal: str) -> Principal:
    return Principal(
        user_id="u1", aal=aal, api_key_id="k1", scopes=("workspaces:read",), workspace_id="w1"
    )


async def test_an_aal1_key_is_refused_where_mfa_is_required() -> None:
    with pytest.raises(PermissionDenied) as err:
        await authorize(RULE, _key("aal1"), "w1", _access(mfa_required=True))
    assert err.value.reason == "MFA_REQUIRED"


async def test_an_aal2_key_and_any_key_elsewhere_pass() -> None:
    forwarded, _ = await authorize(RULE, _key("aal2"), "w1", _access(mfa_required=True))
    assert forwarded.role == access_pb2.ROLE_OWNER
    await authorize(RULE, _key("aal1"), "w1", _access(mfa_required=False))
