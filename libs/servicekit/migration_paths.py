"""Where a service's Alembic revisions live, found from its package.

Every service keeps them in ``services/<name>/migrations/versions/``, beside its ``src/`` folder
(CONTRIBUTING.md, the layout); a composition root hands that folder to ``run_service`` and the
tests to ``servicekit.migrations.upgrade``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["versions_folder"]


def versions_folder(module_file: str) -> Path:
    """The revisions folder of the service whose package holds ``module_file`` (a module directly
    in ``src/<name>_service/``, such as its ``__main__``)."""
    return Path(module_file).resolve().parents[2] / "migrations" / "versions"
