"""Test PKI: the dev CA plus every service identity, and a rogue CA that the services must refuse."""

from __future__ import annotations

from pathlib import Path

from servicekit.devca import SERVICE_IDENTITIES, ensure_dev_pki


def make_pki(directory: Path) -> Path:
    """The trusted PKI (all service identities plus an ``outsider`` with a valid cert) and a rogue CA."""
    trusted = ensure_dev_pki(directory / "trusted", (*SERVICE_IDENTITIES, "outsider"))
    ensure_dev_pki(directory / "rogue", ("edge",))
    return trusted
