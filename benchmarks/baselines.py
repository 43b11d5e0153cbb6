"""The baseline servers, each run as its own process: ``python -m benchmarks.baselines KIND ...``.

``grpc-echo``: a bare ``grpc.aio`` server with one unary method that returns its request, on the
same mutual-TLS credentials as a Railguard service (no interceptors, health or reflection).
``http``: a bare Starlette app returning a small JSON document, under uvicorn with the edge's
certificate and TLS settings — the edge's own server stack without the edge.
``vault``: not a baseline but a dependency: ``testkit.VaultTransitServer`` (Vault's transit API)
in its own process, so it never shares a GIL with the benchmark driver.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

ECHO_METHOD = "/bench.Echo/Echo"

# Roughly the shape and size of the workspace the edge returns.
SMALL_JSON = {
    "name": "workspaces/0123456789abcdef0123456789abcdef",
    "displayName": "Benchmark",
    "plan": "PLAN_FREE",
    "retentionDays": 30,
    "state": "WORKSPACE_STATE_ACTIVE",
    "createTime": "2024-01-01T00:00:00Z",
    "updateTime": "2024-01-01T00:00:00Z",
    "callerRole": "ROLE_OWNER",
}


async def serve_grpc_echo(listen: str, certs: Path, identity: str) -> None:
    import grpc

    async def echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    credentials = grpc.ssl_server_credentials(
        [((certs / f"{identity}.key").read_bytes(), (certs / f"{identity}.crt").read_bytes())],
        root_certificates=(certs / "ca.crt").read_bytes(),
        require_client_auth=True,
    )
    if server.add_secure_port(listen, credentials) == 0:
        raise SystemExit(f"could not bind {listen}")
    await server.start()
    await server.wait_for_termination()


async def serve_http(port: int, certs: Path) -> None:
    import uvicorn
    from edge_service.__main__ import TLS12_CIPHERS
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def document(request: Request) -> Response:
        return JSONResponse(SMALL_JSON)

    app = Starlette(routes=[Route("/{path:path}", document)])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(certs / "edge.crt"),
        ssl_keyfile=str(certs / "edge.key"),
        ssl_ciphers=TLS12_CIPHERS,
        proxy_headers=False,
        server_header=False,
        log_config=None,
        access_log=False,
    )
    await uvicorn.Server(config).serve()


def serve_vault(info: Path, key: str, policy: dict[str, list[str]]) -> None:
    """The transit-compatible test server (testkit) in this process; its address and a token with
    ``policy`` are written to ``info`` as JSON once it serves."""
    import json
    import threading

    from testkit import VaultTransitServer

    with VaultTransitServer() as vault:
        vault.create_key(key, derived=True)
        document = {"address": vault.address, "token": vault.create_token(policy)}
        partial = info.with_suffix(".tmp")
        partial.write_text(json.dumps(document))
        partial.rename(info)
        threading.Event().wait()  # until SIGTERM


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baselines")
    parser.add_argument("kind", choices=("grpc-echo", "http", "vault"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--certs", type=Path)
    parser.add_argument("--identity", default="workspaces", help="grpc-echo: whose cert to serve")
    parser.add_argument("--info", type=Path, help="vault: where to write address and token")
    parser.add_argument("--key", default="credentials", help="vault: the transit key to create")
    parser.add_argument("--policy", default="{}", help="vault: the token's policy, as JSON")
    args = parser.parse_args(argv)
    if args.kind == "vault":
        import json

        serve_vault(args.info, args.key, json.loads(args.policy))
    elif args.kind == "grpc-echo":
        asyncio.run(serve_grpc_echo(f"127.0.0.1:{args.port}", args.certs, args.identity))
    else:
        asyncio.run(serve_http(args.port, args.certs))


if __name__ == "__main__":
    main()
