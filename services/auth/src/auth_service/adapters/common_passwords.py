"""The bundled list of common and breached passwords (``data/common-passwords.txt``)."""

from __future__ import annotations

from importlib import resources

from auth_service.domain import fold

RESOURCE = "common-passwords.txt"


def load_common_passwords() -> frozenset[str]:
    """Every entry, case-folded; ``#`` lines are provenance comments."""
    text = resources.files("auth_service.data").joinpath(RESOURCE).read_text(encoding="utf-8")
    return frozenset(fold(line) for line in text.splitlines() if line and not line.startswith("#"))
