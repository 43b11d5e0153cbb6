"""The change log the edge watches (servicekit.changefeed): a row per change, in its transaction."""

from __future__ import annotations

from servicekit.migrations import change_log_revision

revision = "ws_0007"
down_revision = "ws_0006"
upgrade, downgrade = change_log_revision("workspaces")
