"""The edge holds no database: its process must not load SQLAlchemy or a database driver.

It follows the services' change feeds over gRPC (``servicekit.follower``) and must stay light
(idle RSS, docs/performance.md): loading the producer side of the feed (``servicekit.changefeed``)
would bring SQLAlchemy in, about 20 MB per edge process.
"""

from __future__ import annotations

import subprocess
import sys

_DATABASE = ("sqlalchemy", "asyncpg", "aiosqlite")


def test_the_edge_loads_no_database_library() -> None:
    probe = (
        "import sys, edge_service.__main__, servicekit.follower\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(_DATABASE)!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", f"the edge loads {out.stdout.strip()}"
