"""credentials create+use vs raw AES-GCM + INSERT/SELECT on the same database."""

from __future__ import annotations

from benchmarks.report import Figure
from benchmarks.session import Session

NAME = "credentials"


def run(session: Session) -> list[Figure]:
    return [
        Figure(
            "credentials create+use / AES-GCM + INSERT/SELECT",
            "ops/s",
            None,
            note="not measured: hook only",
        )
    ]
