"""keys VerifyApiKey vs a bare grpc.aio echo, at 1k and 100k stored keys (DESIGN §8)."""

from __future__ import annotations

from benchmarks.report import Figure, Target, TargetKind
from benchmarks.session import Session

NAME = "keys"
KEY_COUNTS = (1_000, 100_000)


def run(session: Session) -> list[Figure]:
    return [
        Figure(
            f"keys Verify @{n:,} keys / bare echo",
            "rps",
            Target(TargetKind.MIN_RATIO, 0.8),
            note="not measured: hook only",
        )
        for n in KEY_COUNTS
    ]
