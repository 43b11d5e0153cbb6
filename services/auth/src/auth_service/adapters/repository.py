"""The auth service's unit of work: one transaction over every repository of its database.

The repositories live in one module per aggregate: ``users`` (users, account tokens),
``sessions`` (sessions, refresh tokens), ``mfa`` (TOTP, recovery codes, challenges),
``signing_keys`` (signing keys, sealed secrets), ``pins`` and ``throttle``.
"""

from __future__ import annotations

from servicekit.audit import AuditEvent
from servicekit.mail import MailingUnitOfWork
from servicekit.outbox import OutboxRepository
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.adapters.mfa import (
    MfaChallengeRepository,
    RecoveryCodeRepository,
    TotpFactorRepository,
)
from auth_service.adapters.pins import DeploymentPinRepository
from auth_service.adapters.sessions import RefreshTokenRepository, SessionRepository
from auth_service.adapters.signing_keys import SecretRepository, SigningKeyRepository
from auth_service.adapters.tables import AUDIT_OUTBOX
from auth_service.adapters.throttle import ThrottleRepository
from auth_service.adapters.users import AccountTokenRepository, UserRepository

__all__ = [
    "AccountTokenRepository",
    "AuthUnitOfWork",
    "DeploymentPinRepository",
    "MfaChallengeRepository",
    "RecoveryCodeRepository",
    "RefreshTokenRepository",
    "SecretRepository",
    "SessionRepository",
    "SigningKeyRepository",
    "ThrottleRepository",
    "TotpFactorRepository",
    "UserRepository",
]


class AuthUnitOfWork(MailingUnitOfWork):
    users: UserRepository
    sessions: SessionRepository
    refresh_tokens: RefreshTokenRepository
    signing_keys: SigningKeyRepository
    totp: TotpFactorRepository
    recovery_codes: RecoveryCodeRepository
    challenges: MfaChallengeRepository
    throttle: ThrottleRepository
    secrets: SecretRepository
    pins: DeploymentPinRepository
    outbox: OutboxRepository[AuditEvent]
    tokens: AccountTokenRepository

    def _bind(self, session: AsyncSession) -> None:
        super()._bind(session)  # the mail outbox
        self.tokens = AccountTokenRepository(session)
        self.users = UserRepository(session)
        self.sessions = SessionRepository(session)
        self.refresh_tokens = RefreshTokenRepository(session)
        self.signing_keys = SigningKeyRepository(session)
        self.totp = TotpFactorRepository(session)
        self.recovery_codes = RecoveryCodeRepository(session)
        self.challenges = MfaChallengeRepository(session)
        self.throttle = ThrottleRepository(session)
        self.secrets = SecretRepository(session)
        self.pins = DeploymentPinRepository(session)
        self.outbox = OutboxRepository(session, AUDIT_OUTBOX)
