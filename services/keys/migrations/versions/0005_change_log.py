"""The change log the edge watches (servicekit.changefeed): a row per change, in its transaction."""

from __future__ import annotations

from servicekit.migrations import change_log_revision

revision = "keys_0005"
down_revision = "keys_0004"
upgrade, downgrade = change_log_revision("keys")
