"""Every peer channel: ~1 s reconnect cap, keepalives, round_robin, retries for reads only."""

from __future__ import annotations

import json

import railguard.auth.v1.auth_service_pb2
import railguard.keys.v1.keys_service_pb2
import railguard.workspaces.v1.workspaces_service_pb2
from servicekit.clients import channel_options, service_config

# the contracts a caller has loaded are the ones its channels configure
_LOADED = (
    railguard.auth.v1.auth_service_pb2,
    railguard.keys.v1.keys_service_pb2,
    railguard.workspaces.v1.workspaces_service_pb2,
)


def test_reconnect_backoff_is_capped_near_one_second() -> None:
    options = dict(channel_options())
    assert options["grpc.max_reconnect_backoff_ms"] <= 1000
    assert options["grpc.initial_reconnect_backoff_ms"] <= 1000
    assert options["grpc.min_reconnect_backoff_ms"] <= 1000
    assert options["grpc.keepalive_time_ms"] > 0 and options["grpc.keepalive_timeout_ms"] > 0
    assert options["grpc.enable_retries"] == 1
    assert json.loads(options["grpc.service_config"]) == service_config()


def test_round_robin_balances_multi_address_targets() -> None:
    assert service_config()["loadBalancingConfig"] == [{"round_robin": {}}]


def test_only_reads_get_a_retry_policy() -> None:
    (method_config,) = service_config()["methodConfig"]
    names = {(n["service"], n["method"]) for n in method_config["name"]}
    assert ("railguard.workspaces.v1.WorkspacesService", "GetWorkspace") in names
    assert ("railguard.workspaces.v1.WorkspacesService", "ResolveAccess") in names
    assert ("railguard.auth.v1.AuthService", "GetJwks") in names
    writes = {
        ("railguard.workspaces.v1.WorkspacesService", "CreateWorkspace"),
        ("railguard.workspaces.v1.WorkspacesService", "AppendAuditEvents"),
        ("railguard.auth.v1.AuthService", "Login"),
        ("railguard.keys.v1.KeysService", "RevokeApiKey"),
        ("railguard.keys.v1.KeysService", "VerifyApiKey"),
    }
    assert not names & writes
    assert all(m.startswith(("Get", "List", "Resolve")) for _, m in names)
    policy = method_config["retryPolicy"]
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert 2 <= policy["maxAttempts"] <= 3
