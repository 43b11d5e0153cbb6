"""Put the monorepo's libraries and services on the venv's import path (one .pth file).

The services are not installed packages; this keeps `python -m <service>_service` and the tests
importing the working tree, exactly as the Dockerfile's PYTHONPATH does.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = [
    # first: the SDK's ``railguard`` package extends its path over libs/api's generated contracts
    "clients/python/src",
    "libs/api",
    "libs",
    *(f"services/{s}/src" for s in ("auth", "workspaces", "keys", "credentials", "edge")),
]

if __name__ == "__main__":
    target = Path(sysconfig.get_paths()["purelib"]) / "railguard.pth"
    target.write_text("".join(f"{ROOT / p}\n" for p in PATHS))
    print(f"wrote {target}")
