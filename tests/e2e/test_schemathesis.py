"""A bounded schemathesis run over every operation of the served /openapi.json, against a real
stack: no server error, and every response conforms to the document (status, content type,
headers, body schema).

Bounded and reproducible: fixed seed, at most ``MAX_EXAMPLES`` cases per operation, one worker,
and a ``BUDGET_SECONDS`` time budget for the run (the whole test stays under three minutes on
two cores). Requests carry a real user's access token, and the ``workspace`` path parameter is
that user's workspace, so workspace routes get past authorization into the services.

Checks: ``not_a_server_error``, ``status_code_conformance``, ``response_headers_conformance``,
``response_schema_conformance`` and ``content_type_conformance_routed``, which is
``content_type_conformance`` minus paths no route matches: the edge-hardening item
"unrouted-path problem+json" (see ``schemathesis_hooks``). The 405 ``Allow`` header
(``allow_header_conformance``, ``unsupported_method``), nested JSON depth and 431 are the
edge-hardening engineer's as well and not selected here.
"""

from __future__ import annotations

import os
import re
import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from devstack import Stack

from .conftest import PASSWORD, _stack, running_stack

ROOT = Path(__file__).resolve().parents[2]
SEED = 20261203
MAX_EXAMPLES = 5
BUDGET_SECONDS = 100
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance_routed",
    "response_headers_conformance",
    "response_schema_conformance",
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(_stack(tmp_path_factory.mktemp("schemathesis"))) as s:
        yield s


@pytest.mark.timeout(240)
def test_every_operation_conforms_to_the_document(stack: Stack, tmp_path: Path) -> None:
    verify = ssl.create_default_context(cafile=str(stack.certs / "ca.crt"))
    with httpx.Client(base_url=stack.url, verify=verify, timeout=30) as http:
        email = f"st{secrets.token_hex(4)}@example.com"
        http.post("/v1/users", json={"email": email, "password": PASSWORD}).raise_for_status()
        login = http.post("/v1/auth:login", json={"email": email, "password": PASSWORD})
        token = login.json()["tokens"]["accessToken"]
        workspace = http.post(
            "/v1/workspaces",
            json={"displayName": "Fuzzed"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()["name"]
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\nworkspace = "{workspace.split("/")[1]}"\n')
    started = time.monotonic()
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            f"{stack.url}/openapi.json",
            "--tls-verify",
            str(stack.certs / "ca.crt"),
            "-H",
            f"Authorization: Bearer {token}",
            "--checks",
            ",".join(CHECKS),
            "--seed",
            str(SEED),
            "--max-examples",
            str(MAX_EXAMPLES),
            "--phases",
            "coverage,fuzzing",
            "--workers",
            "1",
            "--max-time",
            str(BUDGET_SECONDS),
            "--generation-database",
            "none",
            "--generation-with-security-parameters",
            "false",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=BUDGET_SECONDS + 90,
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
        },
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-12000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    assert selected and selected.group(1) == selected.group(2), output[-3000:]
    assert int(selected.group(1)) >= 50  # every operation, the edge's own routes included
    generated = re.search(r"(\d+) generated, (\d+) passed", output)
    assert generated and int(generated.group(1)) >= 500, output[-3000:]
    assert generated.group(1) == generated.group(2)
    assert elapsed < 180, f"the run took {elapsed:.0f} s"
