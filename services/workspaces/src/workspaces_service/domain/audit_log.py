"""The workspace audit log: an append-only hash chain per workspace (CloudTrail-style).

Entry n stores ``prev_hash`` (entry n-1's hash, or 64 zeros for n = 1) and
``hash = SHA-256(prev_hash || canonical JSON of the entry)``, where the JSON holds the event,
its sequence number and the service that relayed it. Editing, deleting or reordering any
stored entry changes a hash that a later entry (or the chain head) has already committed to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from servicekit.audit import AuditEvent, canonical_json

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An event as stored in its workspace's chain."""

    event: AuditEvent
    sequence: int
    source: str
    prev_hash: str
    hash: str


def entry_hash(prev_hash: str, event: AuditEvent, sequence: int, source: str) -> str:
    body = {**event.to_dict(), "sequence": sequence, "source": source}
    return hashlib.sha256(prev_hash.encode() + canonical_json(body).encode()).hexdigest()


def chain_entry(prev_hash: str, event: AuditEvent, sequence: int, source: str) -> AuditEntry:
    return AuditEntry(
        event, sequence, source, prev_hash, entry_hash(prev_hash, event, sequence, source)
    )


@dataclass(frozen=True, slots=True)
class ChainHead:
    sequence: int = 0
    hash: str = GENESIS_HASH


@dataclass(slots=True)
class ChainVerifier:
    """Feed entries in sequence order; ``broken_at`` is the first one that does not verify."""

    expected_sequence: int = 1
    prev_hash: str = GENESIS_HASH
    verified: int = 0
    broken_at: int = 0

    def feed(self, entries: Iterable[AuditEntry]) -> bool:
        """Check a run of entries; False once the chain is broken."""
        for entry in entries:
            if self.broken_at:
                return False
            recomputed = entry_hash(entry.prev_hash, entry.event, entry.sequence, entry.source)
            if (
                entry.sequence != self.expected_sequence
                or entry.prev_hash != self.prev_hash
                or entry.hash != recomputed
            ):
                self.broken_at = self.expected_sequence
                return False
            self.verified += 1
            self.expected_sequence += 1
            self.prev_hash = entry.hash
        return not self.broken_at

    def finish(self, head: ChainHead) -> None:
        """The head must name the last entry: a deleted tail breaks at the first missing one."""
        if self.broken_at:
            return
        last = self.expected_sequence - 1
        if head.sequence > last:
            self.broken_at = self.expected_sequence  # entries the head committed to are gone
        elif head.sequence < last:
            self.broken_at = head.sequence + 1  # entries the head never committed to
        elif head.hash != self.prev_hash:
            self.broken_at = max(last, 1)
