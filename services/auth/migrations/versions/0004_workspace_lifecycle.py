"""What the auth service has heard of each workspace's life (deleted, restored, purged)."""

from __future__ import annotations

from servicekit.migrations import lifecycle_revision

revision = "auth_0004"
down_revision = "auth_0003"

upgrade, downgrade = lifecycle_revision()
