"""The production root's relay ships the vault's audit events to the workspace log over mTLS."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from credentials_service.__main__ import MIGRATIONS, build
from railguard.access.v1 import access_pb2
from railguard.credentials.v1 import credentials_service_pb2 as pb
from railguard.credentials.v1 import credentials_service_pb2_grpc
from railguard.workspaces.v1 import workspaces_service_pb2 as wpb
from servicekit import Principal
from testkit import channel_as, principal_metadata, running
from testkit import test_settings as settings_for

from ..workspaces.conftest import WorkspacesServer, workspaces_server  # noqa: F401
from .conftest import PEPPER, kms_url
from .test_credentials_security import SECRET


async def test_the_relay_ships_audit_events_to_the_workspace_log(
    pki: Path,
    database_url: str,
    tmp_path: Path,
    workspaces_server: WorkspacesServer,  # noqa: F811
) -> None:
    ws_id = await workspaces_server.team()
    owner = principal_metadata(
        Principal(user_id="alice", workspace_id=ws_id, role=access_pb2.ROLE_OWNER)
    )
    settings = settings_for(
        "credentials",
        pki,
        database_url,
        {
            "RAILGUARD_KMS_URL": kms_url("local", tmp_path, None),
            "RAILGUARD_CREDENTIALS_WEBHOOK_PEPPER": PEPPER,
            "RAILGUARD_STATE_DIR": str(tmp_path / "state"),
            "RAILGUARD_WORKSPACES_ADDR": f"127.0.0.1:{workspaces_server.port}",
        },
    )
    async with running(settings, build, MIGRATIONS) as server:
        channel = channel_as("edge", pki, server.port)
        try:
            stub = credentials_service_pb2_grpc.CredentialsServiceStub(channel)
            created = await stub.CreateCredential(
                pb.CreateCredentialRequest(
                    parent=f"workspaces/{ws_id}",
                    credential=pb.Credential(display_name="P", provider="openai", value=SECRET),
                ),
                metadata=owner,
            )
            await stub.DeleteCredential(
                pb.DeleteCredentialRequest(name=created.name), metadata=owner
            )
            ws_stub = workspaces_server.stub()
            deadline = time.monotonic() + 5
            while True:
                listed = await ws_stub.ListAuditEvents(
                    wpb.ListAuditEventsRequest(parent=f"workspaces/{ws_id}"), metadata=owner
                )
                ours = [e for e in listed.audit_events if e.source == "credentials"]
                if len(ours) == 2 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
        finally:
            await channel.close()
    assert [(e.action, e.actor, e.target) for e in reversed(ours)] == [
        ("credential.create", "user:alice", created.name),
        ("credential.delete", "user:alice", created.name),
    ]
    assert SECRET not in str(listed) and created.masked_value not in str(listed)
    report = await ws_stub.VerifyAuditChain(
        wpb.VerifyAuditChainRequest(name=f"workspaces/{ws_id}"), metadata=owner
    )
    assert report.ok
