"""credentials create+use vs raw AES-GCM + INSERT/SELECT on the same database; batch rewrap.

Two credentials service processes (``python -m credentials_service``, the production composition
root) run beside the shared stack, each on its own fresh PostgreSQL database, with mTLS from the
stack's dev CA and its audit relay pointed at the stack's workspaces service:

* ``local``: the embedded local keyring (``local://…?master_key_file=…``);
* ``vault``: ``testkit.VaultTransitServer`` (Vault's transit API, derived key) in its own
  process, reached over loopback HTTP with a least-privilege token.

One operation is ``CreateCredential`` (as ``edge``, the seeded owner's principal) followed by
``UseCredential`` of the new credential (as ``runtime``), value checked; 16 operations in
flight. The baseline is what the service cannot avoid: AES-256-GCM encrypt + one INSERT, then
one SELECT + decrypt, through an asyncpg pool on the ``local`` service's database, from the same
client process. After the create+use rounds, ``rewrap`` (the service's own command, run in the
benchmark process against the live service's database and key manager) rotates the key and
re-seals every stored credential; its figure is rows per second of wall time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from credentials_service.__main__ import rewrap
from devstack import MALLOC_ENV
from servicekit.devca import ensure_dev_pki
from servicekit.kms import MasterKey
from servicekit.settings import load_settings

from benchmarks.loadgen import AeadSqlTarget, CredentialsTarget
from benchmarks.measure import Side, compare, throughput_figure
from benchmarks.processes import ROOT, free_port, wait_for_port
from benchmarks.report import Figure
from benchmarks.session import Session
from benchmarks.stack import BenchStack, databases

NAME = "credentials"
KEY = "credentials"
VALUE = "sk-bench-" + "x" * 40  # a generic provider's value, about an LLM key's size
BASELINE_TABLE = "bench_aead"
REWRAP_BATCH = 100


def _vault_policy() -> dict[str, list[str]]:
    """The service's least privilege plus what rewrap needs (as the integration tests grant)."""
    m = "transit"
    return {
        f"{m}/encrypt/{KEY}": ["update"],
        f"{m}/decrypt/{KEY}": ["update"],
        f"{m}/rewrap/{KEY}": ["update"],
        f"{m}/keys/{KEY}": ["read"],
        f"{m}/keys/{KEY}/rotate": ["update"],
        f"{m}/keys/{KEY}/config": ["update"],
    }


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _vault(workdir: Path) -> Iterator[str]:
    """A transit test server in its own process; yields a KMS URL with a token file."""
    info = workdir / "vault.json"
    info.unlink(missing_ok=True)
    with (workdir / "vault.log").open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "benchmarks.baselines",
                "vault",
                "--info",
                str(info),
                "--key",
                KEY,
                "--policy",
                json.dumps(_vault_policy()),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + 30
        while not info.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the transit test server did not start; see vault.log")
            time.sleep(0.1)
        document = json.loads(info.read_text())
        token_file = workdir / "vault-token"
        token_file.write_text(document["token"])
        token_file.chmod(0o600)
        host = document["address"].split("://", 1)[1]
        yield f"vault+http://{host}/transit/{KEY}?auth=token&token_file={token_file}&timeout=5"
    finally:
        _stop(proc)


def _env(
    bench: BenchStack, state: Path, port: int, database_url: str, kms_url: str
) -> dict[str, str]:
    ports = bench.stack.ports
    return {
        **os.environ,
        "RAILGUARD_STATE_DIR": str(state),
        "RAILGUARD_CERTS_DIR": str(bench.certs),
        "RAILGUARD_LISTEN": f"127.0.0.1:{port}",
        "RAILGUARD_AUTH_ADDR": f"127.0.0.1:{ports.auth}",
        "RAILGUARD_WORKSPACES_ADDR": f"127.0.0.1:{ports.workspaces}",
        "RAILGUARD_KEYS_ADDR": f"127.0.0.1:{ports.keys}",
        "RAILGUARD_DATABASE_URL": database_url,
        "RAILGUARD_KMS_URL": kms_url,
        "RAILGUARD_CREDENTIALS_WEBHOOK_PEPPER": base64.b64encode(secrets.token_bytes(32)).decode(),
        "RAILGUARD_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        **MALLOC_ENV,
    }


@contextlib.contextmanager
def _credentials_service(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "credentials_service"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(int(env["RAILGUARD_LISTEN"].rsplit(":", 1)[1]), proc, timeout=60)
        yield proc
    finally:
        _stop(proc)


def _asyncpg(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _create_baseline_table(dsn: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            f"CREATE TABLE {BASELINE_TABLE} (id text PRIMARY KEY, ciphertext bytea NOT NULL)"
        )
    finally:
        await conn.close()


def _not_measured(reason: str) -> list[Figure]:
    return [
        Figure(
            f"credentials create+use ({b}) / AES-GCM + INSERT/SELECT", "ops/s", None, note=reason
        )
        for b in ("local keyring", "Vault transit")
    ] + [Figure("credentials rewrap", "rows/s", None, note=reason)]


def run(session: Session) -> list[Figure]:
    bench = session.stack()
    if bench.database != "postgres":
        return _not_measured("not measured: needs PostgreSQL (--db postgres)")
    ensure_dev_pki(bench.certs, ("runtime",))  # adds the runtime identity to the dev CA
    work = session.workdir / "credentials"
    work.mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = []
    with databases("postgres", ("credentials_local", "credentials_vault")) as urls:
        asyncio.run(_create_baseline_table(_asyncpg(urls["credentials_local"])))
        baseline = Side(AeadSqlTarget(_asyncpg(urls["credentials_local"]), BASELINE_TABLE, VALUE))
        master = work / "local.master-key"
        master.unlink(missing_ok=True)
        MasterKey.generate().write_file(master)
        local_url = f"local://{work / 'local.keyring'}?master_key_file={master}&key={KEY}"
        (work / "local.keyring").unlink(missing_ok=True)
        with _vault(work) as vault_url:
            for label, backend, kms_url in (
                ("local", "local keyring", local_url),
                ("vault", "Vault transit", vault_url),
            ):
                figures += _backend(
                    session,
                    bench,
                    work,
                    label,
                    backend,
                    kms_url,
                    urls[f"credentials_{label}"],
                    baseline,
                )
    return figures


def _backend(
    session: Session,
    bench: BenchStack,
    work: Path,
    label: str,
    backend: str,
    kms_url: str,
    database_url: str,
    baseline: Side,
) -> list[Figure]:
    port = free_port()
    env = _env(bench, work / f"state-{label}", port, database_url, kms_url)
    certs = bench.certs
    target = CredentialsTarget(
        address=f"127.0.0.1:{port}",
        parent=f"workspaces/{bench.seed.workspace_id}",
        value=VALUE,
        metadata=bench.seed.principal_metadata(),
        edge_cert=str(certs / "edge.crt"),
        edge_key=str(certs / "edge.key"),
        runtime_cert=str(certs / "runtime.crt"),
        runtime_key=str(certs / "runtime.key"),
        ca=str(certs / "ca.crt"),
    )
    load = session.budget.load()
    figure = Figure(
        f"credentials create+use ({backend}) / AES-GCM + INSERT/SELECT",
        "ops/s",
        None,
        note=(
            f"CreateCredential (edge) + UseCredential (runtime) per op, {load.concurrency} in "
            "flight; baseline on the same PostgreSQL server; no DESIGN target"
        ),
    )
    with _credentials_service(env, work / f"credentials-{label}.log") as proc:
        ours = Side(target, {"credentials": proc.pid})
        comparison = compare(session.client, ours, baseline, load, session.budget.rounds)
        figure = throughput_figure(figure, comparison, load)
        settings = load_settings("credentials", env)
        started = time.perf_counter()
        report = asyncio.run(rewrap(settings, REWRAP_BATCH, out=io.StringIO()))
        seconds = time.perf_counter() - started
    rewrapped = Figure(
        f"credentials rewrap ({backend})",
        "rows/s",
        None,
        railguard=report.rewrapped / seconds if seconds > 0 else None,
        note=(
            f"{report.rewrapped:,} rows in {seconds:.2f}s, batches of {REWRAP_BATCH}, key rotated "
            f"to v{report.key_version}; {report.failed} failed"
        ),
        error=f"{report.failed} rows failed to rewrap" if report.failed else "",
        details={"rows": report.rewrapped, "seconds": round(seconds, 3)},
    )
    return [figure, rewrapped]
