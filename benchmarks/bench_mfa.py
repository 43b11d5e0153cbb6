"""PIN verify vs raw argon2id, and MFA (TOTP) challenge completion vs raw HMAC-SHA1 TOTP.

**PIN**: ``VerifyDeploymentPin`` to the real auth process (mTLS as ``edge``), at concurrency =
cores like login, against ``argon2.PasswordHasher.verify`` of a PIN hash at the auth service's
parameters (m=19456 KiB, t=2, p=1) in threads. Every PIN presented is right. The PINs are set with
``SetDeploymentPin`` on ``DEPLOYMENTS`` deployments of the seeded workspace, and each request
comes from its own client address (``CLIENTS``), so neither the per-deployment nor the per-IP
attempt counter is one hot row; the service's throttle settings are untouched (a success refunds
its attempt, so right PINs are never refused).

**MFA**: ``VerifyMfaChallenge`` with a valid TOTP code. A challenge is single use and a TOTP
step can be accepted once per user, so this is a *batch*: ``users`` users are enrolled over
HTTPS (sign up, log in, begin + confirm TOTP with the previous step's code), each logs in again
to get a challenge, and then every challenge is completed once, 16 at a time, each from its own
client address; the figure is completions / elapsed time of the batch (one round). The baseline
is the raw check in one client thread: HMAC-SHA1 for each step of the service's window (-1, 0)
and a constant-time compare, per RFC 6238.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import ssl

import argon2
import httpx
from railguard.auth.v1 import auth_service_pb2
from servicekit.clients import outgoing_metadata
from servicekit.context import Principal
from testkit.totp import secret_from_uri, totp_code, wait_for_fresh_step

from benchmarks.loadgen import Argon2Target, GrpcTarget, Load, Metadata, TotpTarget
from benchmarks.measure import Comparison, Side, compare, measured, throughput_figure
from benchmarks.report import Figure, Target, TargetKind
from benchmarks.session import Session
from benchmarks.stack import PASSWORD, BenchStack

NAME = "mfa"
MEMORY_KIB, TIME_COST, PARALLELISM = 19456, 2, 1  # the auth service's defaults
PIN = "482916"
DEPLOYMENTS = 8
CLIENTS = 64
AUTH = "/railguard.auth.v1.AuthService/"


def _ip(index: int) -> str:
    return f"10.20.{index // 250}.{index % 250 + 1}"


def _metadata(client_ip: str) -> Metadata:
    return tuple(outgoing_metadata(Principal(client_ip=client_ip), "bench"))


def _grpc(bench: BenchStack, method: str) -> GrpcTarget:
    certs = bench.certs
    return GrpcTarget(
        address=f"127.0.0.1:{bench.stack.ports.auth}",
        method=AUTH + method,
        request=b"",
        metadata=(),
        cert=str(certs / "edge.crt"),
        key=str(certs / "edge.key"),
        ca=str(certs / "ca.crt"),
    )


async def _set_pins(bench: BenchStack) -> list[str]:
    import grpc
    from railguard.auth.v1 import auth_service_pb2_grpc

    certs = bench.certs
    credentials = grpc.ssl_channel_credentials(
        (certs / "ca.crt").read_bytes(),
        (certs / "edge.key").read_bytes(),
        (certs / "edge.crt").read_bytes(),
    )
    names = [
        f"workspaces/{bench.seed.workspace_id}/deployments/bench{i}" for i in range(DEPLOYMENTS)
    ]
    address = f"127.0.0.1:{bench.stack.ports.auth}"
    async with grpc.aio.secure_channel(address, credentials) as channel:
        stub = auth_service_pb2_grpc.AuthServiceStub(channel)
        for name in names:
            await stub.SetDeploymentPin(
                auth_service_pb2.SetDeploymentPinRequest(name=f"{name}/pin", pin=PIN),
                metadata=bench.seed.principal_metadata(),
                timeout=30,
            )
    return names


def _pin(session: Session, bench: BenchStack) -> Figure:
    figure = Figure(
        "PIN verify / argon2id verify",
        "/s",
        Target(TargetKind.MIN_RATIO, 0.9),
        note=(
            f"VerifyDeploymentPin, concurrency {session.budget.cores} (= cores) on both sides; "
            f"{DEPLOYMENTS} deployments x {CLIENTS} client IPs; target borrowed from login"
        ),
    )
    names = asyncio.run(_set_pins(bench))
    variants = tuple(
        (
            auth_service_pb2.VerifyDeploymentPinRequest(
                name=names[i % DEPLOYMENTS], pin=PIN
            ).SerializeToString(),
            _metadata(_ip(i)),
        )
        for i in range(CLIENTS)
    )
    verify = dataclasses.replace(_grpc(bench, "VerifyDeploymentPin"), variants=variants)
    hasher = argon2.PasswordHasher(
        time_cost=TIME_COST,
        memory_cost=MEMORY_KIB,
        parallelism=PARALLELISM,
        hash_len=32,
        salt_len=16,
        type=argon2.Type.ID,
    )
    raw = Argon2Target(hasher.hash(PIN), PIN, MEMORY_KIB, TIME_COST, PARALLELISM)
    load = session.budget.load(concurrency=session.budget.cores)
    ours = Side(verify, {"auth": bench.pids()["auth"]})
    comparison = compare(session.client, ours, Side(raw), load, session.budget.rounds)
    return throughput_figure(figure, comparison, load)


async def _mfa_users(bench: BenchStack, count: int) -> list[tuple[bytes, str]]:
    """``count`` users with a confirmed TOTP factor and a fresh login challenge each."""
    context = ssl.create_default_context(cafile=str(bench.certs / "ca.crt"))
    gate = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=bench.stack.url, verify=context, timeout=60) as client:

        async def send(path: str, body: dict[str, str], token: str = "") -> dict[str, object]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with gate:
                response = await client.post(path, json=body, headers=headers)
            response.raise_for_status()
            data: dict[str, object] = response.json()
            return data

        async def begin() -> tuple[str, bytes, str]:
            email = f"bench-mfa-{secrets.token_hex(5)}@example.com"
            await send("/v1/users", {"email": email, "password": PASSWORD})
            login = await send("/v1/auth:login", {"email": email, "password": PASSWORD})
            token = str(login["tokens"]["accessToken"])  # type: ignore[index]
            begun = await send("/v1/users/me/mfa/totp:beginEnrollment", {}, token)
            return email, secret_from_uri(str(begun["otpauthUri"])), token

        started = await asyncio.gather(*(begin() for _ in range(count)))
        await wait_for_fresh_step(min_remaining=12.0)

        async def confirm(email: str, secret: bytes, token: str) -> tuple[bytes, str]:
            # the previous step's code, so the current step is still unused at the challenge
            body = {"code": totp_code(secret, steps=-1)}
            await send("/v1/users/me/mfa/totp:confirmEnrollment", body, token)
            login = await send("/v1/auth:login", {"email": email, "password": PASSWORD})
            challenge = login["mfaChallenge"]["challengeToken"]  # type: ignore[index]
            return secret, str(challenge)

        return list(await asyncio.gather(*(confirm(*s) for s in started)))


def _mfa(session: Session, bench: BenchStack) -> Figure:
    users = 48 if session.budget.rounds > 1 else 16
    figure = Figure(
        "MFA VerifyMfaChallenge (TOTP) / raw HMAC-SHA1 TOTP check",
        "/s",
        None,
        note=(
            f"one batch of {users} single-use challenges (one per user), concurrency "
            f"{session.budget.concurrency}; baseline 1 thread; no DESIGN target"
        ),
    )
    prepared = asyncio.run(_mfa_users(bench, users))
    variants = tuple(
        (
            auth_service_pb2.VerifyMfaChallengeRequest(
                challenge_token=challenge, totp_code=totp_code(secret)
            ).SerializeToString(),
            _metadata(_ip(CLIENTS + i)),
        )
        for i, (secret, challenge) in enumerate(prepared)
    )
    complete = dataclasses.replace(_grpc(bench, "VerifyMfaChallenge"), variants=variants, once=True)
    batch = Load(session.budget.concurrency, duration=60.0, warmup=0.0, max_requests=users)
    ours = measured(session.client, Side(complete, {"auth": bench.pids()["auth"]}), batch)
    raw = measured(
        session.client, Side(TotpTarget(prepared[0][0])), session.budget.load(concurrency=1)
    )
    figure = throughput_figure(figure, Comparison([ours], [raw]), batch)
    figure.details["baseline_concurrency"] = 1
    return figure


def run(session: Session) -> list[Figure]:
    bench = session.stack()
    return [_pin(session, bench), _mfa(session, bench)]
