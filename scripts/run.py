"""``make run``: the whole suite on embedded defaults (SQLite, local keyring, dev certificates)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from devstack import Stack

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    state = Path(os.environ.get("RAILGUARD_STATE_DIR", ROOT / ".state")).resolve()
    stack = Stack(state, edge_workers=None)  # the edge's default: one worker per CPU
    print(
        f"starting auth, workspaces, keys, credentials and edge (logs in {state}/*.log) ...",
        flush=True,
    )
    stack.start(timeout=90)
    ca = stack.certs / "ca.crt"
    print(
        f"""
Railguard is running at {stack.url}
  OpenAPI:  {stack.url}/openapi.json
  JWKS:     {stack.url}/.well-known/jwks.json
  CA:       {ca}

Try it:
  curl --cacert {ca} -X POST {stack.url}/v1/users \\
       -H 'Content-Type: application/json' \\
       -d '{{"email":"ada@example.com","password":"correct horse battery staple"}}'

Press Ctrl-C to stop.""",
        flush=True,
    )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            for label, proc in stack.processes.items():
                if proc.poll() is not None:
                    print(f"{label} exited with {proc.returncode}; stopping", file=sys.stderr)
                    stopping = True
            time.sleep(0.5)
    finally:
        print("stopping ...", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
