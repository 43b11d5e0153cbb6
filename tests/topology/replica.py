"""A minimal Railguard gRPC server (health only, metrics on) for the scale-up test.

``python tests/topology/replica.py``: settings from the environment, like every service; serves
until SIGTERM.
"""

from __future__ import annotations

import asyncio

from servicekit.server import serve
from servicekit.settings import load_settings

if __name__ == "__main__":
    asyncio.run(serve(load_settings("workspaces"), []))
