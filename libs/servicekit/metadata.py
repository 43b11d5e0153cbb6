"""Lists fitted to one audit metadata value, the same way in every service.

Pure (no gRPC, no SQLAlchemy), so use cases of every service may use it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["joined"]


def joined(values: Sequence[str], limit: int = 256) -> str:
    """``values`` comma-joined, cut at a whole item to fit an audit metadata value."""
    out = ""
    for value in values:
        candidate = f"{out},{value}" if out else value
        if len(candidate) > limit - 2:
            return f"{out},…"
        out = candidate
    return out
