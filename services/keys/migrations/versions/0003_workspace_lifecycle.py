"""What the keys service has heard of each workspace's life (deleted, restored, purged)."""

from __future__ import annotations

from servicekit.migrations import lifecycle_revision

revision = "keys_0003"
down_revision = "keys_0002"

upgrade, downgrade = lifecycle_revision()
