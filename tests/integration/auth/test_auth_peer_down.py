"""auth's calls to the workspaces service (account deletion, invite-only sign-up) fail closed
as ``Unavailable`` — a retryable 503 at the edge — when workspaces cannot be reached."""

from __future__ import annotations

from pathlib import Path

import pytest
from auth_service.adapters.memberships import GrpcInvitations, GrpcMemberships
from devstack import free_port
from servicekit import Unavailable
from servicekit.clients import open_channel
from testkit import test_settings


async def test_workspaces_down_is_unavailable_not_a_raw_rpc_error(pki: Path) -> None:
    settings = test_settings("auth", pki)
    channel = open_channel(settings, f"127.0.0.1:{free_port()}")  # nothing listens there
    try:
        with pytest.raises(Unavailable):
            await GrpcMemberships(channel).remove_all("u1")
        with pytest.raises(Unavailable):
            await GrpcInvitations(channel).pending_for("ada@example.com")
    finally:
        await channel.close()
