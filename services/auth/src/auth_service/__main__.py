"""Composition root of the auth service: settings → adapters → serve().

Settings: the shared ``servicekit.Settings`` and auth's own
:class:`~auth_service.config.AuthSettings` (every ``RAILGUARD_*`` name, default and meaning:
``servicekit.catalog`` and the README's table).
Without ``SMTP_URL`` mails are ``.eml`` files under ``<state_dir>/mail`` (servicekit.mail).

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

import logging
import sys

from railguard.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from servicekit import (
    Registration,
    Settings,
    SystemClock,
    Wiring,
    changefeed,
    current,
    open_channel,
    run_service,
)
from servicekit.background import Loop
from servicekit.composition import (
    job_storage,
    open_storage,
    poke_all,
    service_key_manager,
    serving_collaborators,
    start_audit_relay,
    start_mail_relay,
)
from servicekit.kms import KeyManager
from servicekit.lifecycle import LifecycleApplier, WorkspaceGate
from servicekit.migrations import versions_folder
from servicekit.usecase import Collaborators

from auth_service.adapters.common_passwords import load_common_passwords
from auth_service.adapters.jwt_signer import Ed25519JwtSigner
from auth_service.adapters.lifecycle import destroy_workspace_pins, record_workspace_purge
from auth_service.adapters.memberships import GrpcInvitations, GrpcMemberships
from auth_service.adapters.password_hasher import Argon2Hasher
from auth_service.adapters.repository import AuthUnitOfWork
from auth_service.adapters.sealer import MigratingSealer, load_legacy_kek
from auth_service.adapters.tables import AUDIT_OUTBOX, CHANGE_LOG, LIFECYCLE, MAIL_OUTBOX
from auth_service.config import AuthSettings
from auth_service.servicer import AuthServicer
from auth_service.usecases import AuthUseCases, build_use_cases
from auth_service.usecases.session_state import SessionState

# where service_key_manager keeps the embedded keyring and its master key without KMS_URL
KEYRING_FILE = "auth.keyring"
MASTER_KEY_FILE = "auth.keyring.key"

MIGRATIONS = versions_folder(__file__)

_log = logging.getLogger("auth_service")


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
    """``KMS_URL`` when set; else the embedded keyring ``<state_dir>/auth.keyring``."""
    return service_key_manager(settings, "auth")


async def build(settings: Settings) -> Wiring:
    own = AuthSettings.load(settings)  # read (and refused) before anything is started
    storage = open_storage(settings)
    sessions = storage.sessions
    hasher = await Argon2Hasher.create(own.argon2, own.hash_concurrency)
    kms = key_manager(settings)
    await kms.self_check()  # fail fast on a misconfigured or unreachable key
    sealer = MigratingSealer(kms, load_legacy_kek(own.signing_kek, settings.state_dir))
    # audit events leave over mTLS to AppendAuditEvents (the contract lists "auth" as a caller)
    channel = open_channel(settings, settings.peers.workspaces)
    relay = start_audit_relay(settings, sessions, AUDIT_OUTBOX, channel)
    mail_outbox, mailer = start_mail_relay(settings, sessions, MAIL_OUTBOX, kms)
    after_commit = poke_all(relay, mailer)
    shared = serving_collaborators(
        sessions, lambda pool: AuthUnitOfWork(pool, mail_outbox), after_commit
    )
    auth = build_use_cases(
        shared,
        hasher,
        load_common_passwords(),
        sealer,
        Ed25519JwtSigner(),
        own.config,
        memberships=GrpcMemberships(channel),
        invitations=GrpcInvitations(channel),
        user_agent=lambda: current().principal.user_agent,
    )
    try:
        await auth.signing_keys.rotate_signing_keys()
    except BaseException:
        await mailer.stop()
        await relay.stop()
        await channel.close()
        raise
    maintenance = Loop("auth-maintenance")
    every = own.maintenance_seconds
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
            session_state=SessionState(shared.reader, shared.clock),
        ),
        auth_service_pb2,
    )
    # on_stop runs in reverse: stop maintenance and the relay first, dispose of the engine last
    return changefeed.wiring(
        registration,
        sessions,
        CHANGE_LOG,
        [
            storage.close,
            kms.close,
            channel.close,
            relay.stop,
            mailer.stop,
            maintenance.stop,
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
    import argparse  # only this one-shot command parses options: not loaded by a serving process

    parser = argparse.ArgumentParser(prog="python -m auth_service rotate-signing-key")
    parser.add_argument("--immediate", action="store_true", help="do not wait for JWKS caches")
    args = parser.parse_args(argv)
    own = AuthSettings.load(settings)
    kms = key_manager(settings)
    try:
        async with job_storage(settings) as storage:
            await kms.self_check()
            sessions = storage.sessions
            auth = build_use_cases(
                Collaborators(uow=lambda: AuthUnitOfWork(sessions), clock=SystemClock()),
                await Argon2Hasher.create(),
                load_common_passwords(),
                MigratingSealer(kms, load_legacy_kek(own.signing_kek, settings.state_dir)),
                Ed25519JwtSigner(),
                own.config,
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
