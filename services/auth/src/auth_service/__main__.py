"""Composition root of the auth service: settings → adapters → serve().

Service settings (``RAILGUARD_*``; defaults in brackets):
``AUTH_ACCESS_TOKEN_TTL_SECONDS`` [600], ``AUTH_REFRESH_IDLE_SECONDS`` [14 d],
``AUTH_REFRESH_ABSOLUTE_SECONDS`` [30 d], ``AUTH_REFRESH_GRACE_SECONDS`` [10],
``AUTH_KEY_ROTATION_SECONDS`` [30 d], ``AUTH_JWKS_CACHE_SECONDS`` [600],
``AUTH_MAINTENANCE_SECONDS`` [60], ``AUTH_ARGON2_MEMORY_KIB`` / ``_TIME_COST`` / ``_PARALLELISM``
[19456 / 2 / 1, raised to that floor], ``AUTH_HASH_CONCURRENCY`` [CPU count],
``AUTH_TOTP_ISSUER`` [Railguard], ``AUTH_DEPLOYMENT_AUDIENCE`` [railguard-agent-ui],
``AUTH_DEPLOYMENT_TOKEN_TTL_SECONDS`` [900], ``AUTH_STEP_UP_MAX_AGE_SECONDS`` [900, at most],
``AUTH_LOGIN_IP_FREE_FAILURES`` [20], ``AUTH_LOGIN_IP_HOURLY_CAP`` [300], ``AUTH_LOGIN_ACCOUNT_HOURLY_CAP`` [100, at most],
``AUDIT_RELAY_INTERVAL`` [1 s], ``SIGNUP_POLICY`` [open; invite-only; domains:a.example,b.example], ``AUTH_ACCOUNT_RETENTION_DAYS`` [30: then a deleted account's
personal data is erased, a tombstone stays], ``PUBLIC_URL`` [https://127.0.0.1:8443, the edge: links in
mails], ``SMTP_URL`` / ``SMTP_PASSWORD`` / ``SMTP_CA_FILE`` / ``MAIL_FROM`` /
``MAIL_RELAY_INTERVAL`` (servicekit.mail; without ``SMTP_URL`` mails are ``.eml`` files under
``<state_dir>/mail``).

Audit events (sign-up, logins, MFA, sessions, PINs, …) are written to ``auth_audit_outbox`` in
the change's transaction and relayed by an ``AuditRelay`` to the workspaces service's internal
``AppendAuditEvents`` over mTLS (caller identity ``auth``); while that service is down they wait.

Encryption at rest (signing keys, TOTP secrets, the recovery-code pepper) goes through the
shared ``KeyManager``: ``KMS_URL`` when set (``vault://…`` in production), else a local keyring
at ``<state_dir>/auth.keyring`` sealed by ``<state_dir>/auth.keyring.key`` (created 0600).
``AUTH_SIGNING_KEK`` / ``<state_dir>/auth-signing.kek``, when present, only opens signing keys
sealed before that move.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path
from urllib.parse import quote

from railguard.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from servicekit import (
    Registration,
    Settings,
    SystemClock,
    Wiring,
    changefeed,
    current,
    open_channel,
    origin_from_context,
    run_service,
)
from servicekit.background import Loop
from servicekit.composition import job_storage, open_storage, start_audit_relay
from servicekit.kms import KeyManager, MasterKey, key_manager_from_url
from servicekit.lifecycle import LifecycleApplier, WorkspaceGate
from servicekit.mail import mail_relay

from auth_service.adapters.common_passwords import load_common_passwords
from auth_service.adapters.jwt_signer import Ed25519JwtSigner
from auth_service.adapters.lifecycle import destroy_workspace_pins, record_workspace_purge
from auth_service.adapters.memberships import GrpcInvitations, GrpcMemberships
from auth_service.adapters.password_hasher import Argon2Hasher, Argon2Params
from auth_service.adapters.repository import AuthUnitOfWork
from auth_service.adapters.sealer import MigratingSealer, load_legacy_kek
from auth_service.adapters.tables import AUDIT_OUTBOX, CHANGE_LOG, LIFECYCLE, MAIL_OUTBOX
from auth_service.domain import RotationPolicy, SessionPolicy, ThrottlePolicy
from auth_service.domain.signup_policy import SignupPolicy
from auth_service.servicer import AuthServicer
from auth_service.usecases import AuthConfig, AuthUseCases, ThrottlePolicies, build_use_cases
from auth_service.usecases.session_state import SessionState

KEYRING_FILE = "auth.keyring"
MASTER_KEY_FILE = "auth.keyring.key"

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"

_log = logging.getLogger("auth_service")


def load_config(settings: Settings) -> AuthConfig:
    def seconds(name: str, default: float) -> dt.timedelta:
        return dt.timedelta(seconds=settings.get_float(name, default))

    access_ttl = seconds("AUTH_ACCESS_TOKEN_TTL_SECONDS", 600)
    step_up = min(seconds("AUTH_STEP_UP_MAX_AGE_SECONDS", 900), dt.timedelta(minutes=15))
    throttle = ThrottlePolicies(
        # DESIGN §4: never more than 100 failures per hour per account; only lower is allowed.
        login_account=ThrottlePolicy(
            hourly_cap=min(settings.get_int("AUTH_LOGIN_ACCOUNT_HOURLY_CAP", 100), 100)
        ),
        login_ip=ThrottlePolicy(
            free_failures=settings.get_int("AUTH_LOGIN_IP_FREE_FAILURES", 20),
            hourly_cap=settings.get_int("AUTH_LOGIN_IP_HOURLY_CAP", 300),
        ),
    )
    return AuthConfig(
        throttle=throttle,
        step_up_max_age=step_up,
        totp_issuer=settings.get("AUTH_TOTP_ISSUER", "Railguard"),
        deployment_audience=settings.get("AUTH_DEPLOYMENT_AUDIENCE", "railguard-agent-ui"),
        deployment_token_ttl=seconds("AUTH_DEPLOYMENT_TOKEN_TTL_SECONDS", 900),
        public_url=settings.get("PUBLIC_URL", "https://127.0.0.1:8443"),
        account_retention=dt.timedelta(days=settings.get_int("AUTH_ACCOUNT_RETENTION_DAYS", 30)),
        signup=SignupPolicy.parse(settings.get("SIGNUP_POLICY", "open")),
        issuer=settings.issuer,
        audience=settings.audience,
        access_token_ttl=access_ttl,
        sessions=SessionPolicy(
            idle=seconds("AUTH_REFRESH_IDLE_SECONDS", 14 * 86400),
            absolute=seconds("AUTH_REFRESH_ABSOLUTE_SECONDS", 30 * 86400),
            grace=seconds("AUTH_REFRESH_GRACE_SECONDS", 10),
        ),
        rotation=RotationPolicy(
            interval=seconds("AUTH_KEY_ROTATION_SECONDS", 30 * 86400),
            jwks_cache=seconds("AUTH_JWKS_CACHE_SECONDS", 600),
            access_token_ttl=access_ttl,
        ),
    )


async def _maintain(auth: AuthUseCases, loop: Loop, every: float) -> None:
    """Rotate signing keys when due and drop expired grace secrets, until stopped."""
    while await loop.pause(every):
        try:
            await auth.signing_keys.rotate_signing_keys()
            await auth.refresh.forget_grace_secrets()
            await auth.maintenance.purge_expired()
        except Exception:
            _log.exception("auth maintenance failed; retrying next period")


def key_manager(settings: Settings) -> KeyManager:
    """``KMS_URL`` when set; else the embedded keyring, its master key created 0600 if absent."""
    if settings.kms_url:
        return key_manager_from_url(settings.kms_url)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    key_file = settings.state_dir / MASTER_KEY_FILE
    try:
        MasterKey.generate().write_file(key_file)
    except FileExistsError:
        pass
    if key_file.stat().st_mode & 0o077:
        raise PermissionError(f"{key_file} must not be readable by group or others (chmod 600)")
    keyring = settings.state_dir / KEYRING_FILE
    return key_manager_from_url(
        f"local://{quote(str(keyring))}?master_key_file={quote(str(key_file))}&key=auth"
    )


async def build(settings: Settings) -> Wiring:
    storage = open_storage(settings)
    sessions, read_sessions = storage.sessions, storage.read_sessions
    hasher = await Argon2Hasher.create(
        Argon2Params(
            settings.get_int("AUTH_ARGON2_MEMORY_KIB", 19456),
            settings.get_int("AUTH_ARGON2_TIME_COST", 2),
            settings.get_int("AUTH_ARGON2_PARALLELISM", 1),
        ),
        settings.get_int("AUTH_HASH_CONCURRENCY", 0) or None,
    )
    kms = key_manager(settings)
    await kms.self_check()  # fail fast on a misconfigured or unreachable key
    sealer = MigratingSealer(
        kms, load_legacy_kek(settings.get("AUTH_SIGNING_KEK"), settings.state_dir)
    )
    # audit events leave over mTLS to AppendAuditEvents (the contract lists "auth" as a caller)
    channel = open_channel(settings, settings.peers.workspaces)
    relay = start_audit_relay(settings, sessions, AUDIT_OUTBOX, channel)
    mail_outbox = MAIL_OUTBOX.with_sealer(kms)
    mailer = mail_relay(settings, sessions, mail_outbox)
    mailer.start()

    def after_commit() -> None:
        relay.poke()
        mailer.poke()

    auth = build_use_cases(
        lambda: AuthUnitOfWork(sessions, mail_outbox),
        SystemClock(),
        hasher,
        load_common_passwords(),
        sealer,
        Ed25519JwtSigner(),
        load_config(settings),
        origin=origin_from_context,
        after_commit=after_commit,
        memberships=GrpcMemberships(channel),
        invitations=GrpcInvitations(channel),
        user_agent=lambda: current().principal.user_agent,
        read_uow=lambda: AuthUnitOfWork(read_sessions, mail_outbox),
    )
    try:
        await auth.signing_keys.rotate_signing_keys()
    except BaseException:
        await mailer.stop()
        await relay.stop()
        await channel.close()
        raise
    maintenance = Loop("auth-maintenance")
    every = settings.get_float("AUTH_MAINTENANCE_SECONDS", 60)
    maintenance.start(lambda: _maintain(auth, maintenance, every))

    registration = Registration(
        auth_service_pb2_grpc.add_AuthServiceServicer_to_server,
        AuthServicer(
            auth,
            lifecycle=LifecycleApplier(
                sessions,
                LIFECYCLE,
                destroy_workspace_pins,
                after_purge=record_workspace_purge,
                after_commit=relay.poke,
            ),
            gate=WorkspaceGate(sessions, LIFECYCLE),
            session_state=SessionState(lambda: AuthUnitOfWork(read_sessions), SystemClock()),
        ),
        auth_service_pb2,
    )
    # on_stop runs in reverse: stop maintenance and the relay first, dispose of the engine last
    feed = changefeed.ChangeFeed(sessions, CHANGE_LOG)  # the edge's Watch (servicekit.changefeed)
    return Wiring(
        [registration, changefeed.registration(feed)],
        on_stop=[
            storage.close,
            kms.close,
            channel.close,
            relay.stop,
            mailer.stop,
            maintenance.stop,
            feed.close,
        ],
    )


async def _rotate_signing_key_command(settings: Settings, argv: list[str]) -> int:
    """Rotate the JWT signing key now; the running replicas sign with the new key at once.

    The published next key becomes current, the current one is retired (it still verifies
    tokens for the access-token lifetime plus the JWKS cache time) and a new next key is
    published. Without --immediate the next key must have been published for at least
    RAILGUARD_AUTH_JWKS_CACHE_SECONDS (so every verifier already has it); --immediate skips that
    wait, for a compromised key (verifiers refetch the JWKS on the unknown kid). The audit event
    waits in the outbox for a serving replica's relay.

    options: --immediate
    """
    parser = argparse.ArgumentParser(prog="python -m auth_service rotate-signing-key")
    parser.add_argument("--immediate", action="store_true", help="do not wait for JWKS caches")
    args = parser.parse_args(argv)
    kms = key_manager(settings)
    try:
        async with job_storage(settings) as storage:
            await kms.self_check()
            sessions = storage.sessions
            auth = build_use_cases(
                lambda: AuthUnitOfWork(sessions),
                SystemClock(),
                await Argon2Hasher.create(),
                load_common_passwords(),
                MigratingSealer(
                    kms, load_legacy_kek(settings.get("AUTH_SIGNING_KEK"), settings.state_dir)
                ),
                Ed25519JwtSigner(),
                load_config(settings),
            )
            plan = await auth.signing_keys.rotate_signing_key_now(immediate=args.immediate)
    finally:
        await kms.close()
    if plan.promote is None:
        print(  # noqa: T201 - the command's output
            "not rotated: no next key has been published for the JWKS cache time yet; "
            "retry later, or pass --immediate",
            file=sys.stderr,
        )
        return 1
    retired = ",".join(plan.retire) or "none"
    print(f"signing key rotated: {plan.promote} signs now; retired {retired}")  # noqa: T201
    return 0


if __name__ == "__main__":
    run_service("auth", build, MIGRATIONS, {"rotate-signing-key": _rotate_signing_key_command})
