"""The declared flows (servicekit.flows) cover every peer a composition root dials.

Read from the code: a service dials a peer where it reads ``settings.peers.<peer>``, where it
relays audit events (``GrpcAuditSink``, ``relay_now``, ``start_audit_relay`` and
``run_audited_job`` always dial workspaces), and the edge dials
every service its route table forwards to.
"""

from __future__ import annotations

import re
from pathlib import Path

from servicekit.flows import FLOWS, peers_of

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("auth", "workspaces", "keys", "credentials", "edge")
_PEER = re.compile(r"\bpeers\.(auth|workspaces|keys|credentials)\b")
_AUDIT_DIAL = re.compile(r"\b(GrpcAuditSink|relay_now|start_audit_relay|run_audited_job)\b")


def dialled_by(service: str) -> set[str]:
    """The peers ``service``'s own source reads an address for."""
    found: set[str] = set()
    for path in (ROOT / "services" / service / "src").rglob("*.py"):
        text = path.read_text()
        found |= set(_PEER.findall(text))
        if _AUDIT_DIAL.search(text) and service != "workspaces":  # its own log is local
            found.add("workspaces")
    if service == "edge":
        from edge_service.upstream import _SERVICE_PEER

        found |= set(_SERVICE_PEER.values())
    return found


def test_every_peer_a_service_dials_is_a_declared_flow() -> None:
    for service in SERVICES:
        undeclared = dialled_by(service) - peers_of(service)
        assert not undeclared, f"{service} dials {sorted(undeclared)}: add them to FLOWS"


def test_the_known_flows_are_found_in_the_code() -> None:
    """The scan is not vacuous: the flows issue 12 found by reading the code are seen by it."""
    assert dialled_by("edge") == {"auth", "workspaces", "keys", "credentials"}
    assert {"workspaces"} <= dialled_by("keys")
    assert {"workspaces"} <= dialled_by("auth")
    assert {"workspaces"} <= dialled_by("credentials")
    assert {"auth"} <= dialled_by("workspaces")


def test_the_list_has_no_duplicates_and_no_self_calls() -> None:
    pairs = [(f.caller, f.callee) for f in FLOWS]
    assert len(pairs) == len(set(pairs))
    assert all(a != b for a, b in pairs)
    assert {a for a, _ in pairs} | {b for _, b in pairs} <= set(SERVICES)
