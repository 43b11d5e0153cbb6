"""Who calls whom inside Railguard: the one declared list of service-to-service gRPC flows.

Each flow is a caller whose composition root dials a peer (``RAILGUARD_<PEER>_ADDR``, read as
``settings.peers.<peer>``) and the RPCs it calls there. Three tests hold the list to the truth:
the composition roots read no peer that is not listed (tests/unit/test_flows.py), a journey
through the running suite opens no connection that is not listed (tests/e2e/test_flows.py), and
the rendered NetworkPolicies of every overlay allow exactly these flows and nothing else
(tests/deploy/test_manifests.py). A new call between services starts here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FLOWS", "GRPC_PORT", "Flow", "callers_of", "peers_of"]

GRPC_PORT = 50051  # every internal service's mTLS port in the manifests


@dataclass(frozen=True, slots=True)
class Flow:
    """``caller`` opens an mTLS channel to ``callee`` (its ``RAILGUARD_<CALLEE>_ADDR``)."""

    caller: str
    callee: str
    rpcs: tuple[str, ...]
    why: str


FLOWS: tuple[Flow, ...] = (
    Flow(
        "edge",
        "auth",
        ("*", "GetJwks", "GetSessionState", "Watch"),
        "public auth routes; JWKS for local token checks; session revocations pushed, and asked"
        " while the feed is not live",
    ),
    Flow(
        "edge",
        "workspaces",
        ("*", "ResolveAccess", "StreamAuditEvents", "Watch"),
        "workspace routes; roles on demand, kept fresh by the change feed; the audit live tail",
    ),
    Flow(
        "edge",
        "keys",
        ("*", "VerifyApiKey", "Watch"),
        "API-key routes; key verification; key changes pushed",
    ),
    Flow("edge", "credentials", ("*",), "credential and webhook routes"),
    Flow("keys", "workspaces", ("ResolveAccess", "AppendAuditEvents"), "key checks; audit relay"),
    Flow("auth", "workspaces", ("AppendAuditEvents",), "audit relay (sign-up, logins, MFA)"),
    Flow("credentials", "workspaces", ("AppendAuditEvents",), "audit relay"),
    Flow("workspaces", "auth", ("LookupUser",), "adding members by e-mail, member details"),
    # the lifecycle relay: a deleted workspace's keys and credentials follow it
    Flow("workspaces", "keys", ("lifecycle relay",), "workspace deletion/restore reaches keys"),
    Flow("workspaces", "credentials", ("lifecycle relay",), "… and credentials"),
)


def peers_of(caller: str) -> frozenset[str]:
    """The services ``caller`` dials."""
    return frozenset(f.callee for f in FLOWS if f.caller == caller)


def callers_of(callee: str) -> frozenset[str]:
    """The services that dial ``callee``."""
    return frozenset(f.caller for f in FLOWS if f.callee == callee)
