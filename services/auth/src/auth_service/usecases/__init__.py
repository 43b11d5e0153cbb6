"""Use cases of the auth service: fetch → check → act → commit, primitives in and out.

One class per capability, each on the ports of :mod:`auth_service.ports` only:

- :class:`Accounts` (``accounts.py``): sign-up, email verification and change, look-ups,
  deletion and erasure;
- :class:`Sessions` (``sessions.py``): password login, logout, listing and revoking sessions;
- :class:`Refresh` (``refresh.py``): refresh-token rotation and reuse detection;
- :class:`Mfa` (``mfa.py``): the TOTP factor and the second login step;
- :class:`RecoveryCodes` (``recovery.py``): one-time recovery codes;
- :class:`Passwords` (``passwords.py``): password change and reset;
- :class:`DeploymentPins` (``pins.py``): deployment PINs and deployment tokens;
- :class:`SigningKeys` (``signing_keys.py``): the JWKS and key rotation;
- :class:`Maintenance` (``maintenance.py``): periodic clean-up.

They share collaborators: :class:`UseCaseContext` (unit of work, clock, ids, settings, audit),
:class:`Throttling` (attempt limits), :class:`TokenIssuer` (sessions' tokens, JWT signing),
:class:`Peppers` and :class:`AccountTokens` (mailed tokens). :func:`build_use_cases` wires
them; the composition root (``__main__``) calls it with the adapters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Unpack

from servicekit.usecase import Collaborators

from auth_service.domain import Blocklist
from auth_service.ports import (
    Invitations,
    Memberships,
    PasswordHasher,
    Sealer,
    TokenSigner,
    UnitOfWork,
)
from auth_service.usecases.account_tokens import AccountTokens
from auth_service.usecases.accounts import Accounts
from auth_service.usecases.config import (
    AuthConfig,
    ChallengeIssued,
    DeploymentToken,
    MfaState,
    ThrottlePolicies,
    TokenPair,
    TotpEnrollment,
)
from auth_service.usecases.context import ContextOptions, UseCaseContext
from auth_service.usecases.maintenance import Maintenance
from auth_service.usecases.mfa import Mfa
from auth_service.usecases.passwords import Passwords
from auth_service.usecases.peppers import Peppers
from auth_service.usecases.pins import DeploymentPins
from auth_service.usecases.recovery import RecoveryCodes
from auth_service.usecases.refresh import Refresh
from auth_service.usecases.sessions import Sessions
from auth_service.usecases.signing_keys import SigningKeys
from auth_service.usecases.throttling import Bucket, Throttling
from auth_service.usecases.tokens import TokenIssuer

__all__ = [
    "AccountTokens",
    "Accounts",
    "AuthConfig",
    "AuthUseCases",
    "Bucket",
    "ChallengeIssued",
    "ContextOptions",
    "DeploymentPins",
    "DeploymentToken",
    "Maintenance",
    "Mfa",
    "MfaState",
    "Passwords",
    "Peppers",
    "RecoveryCodes",
    "Refresh",
    "Sessions",
    "SigningKeys",
    "ThrottlePolicies",
    "Throttling",
    "TokenIssuer",
    "TokenPair",
    "TotpEnrollment",
    "UseCaseContext",
    "build_use_cases",
]


@dataclass(frozen=True, slots=True)
class AuthUseCases:
    """Every capability of the auth service, wired on one set of collaborators."""

    context: UseCaseContext
    throttling: Throttling
    accounts: Accounts
    sessions: Sessions
    refresh: Refresh
    mfa: Mfa
    recovery: RecoveryCodes
    passwords: Passwords
    pins: DeploymentPins
    signing_keys: SigningKeys
    maintenance: Maintenance


def build_use_cases(
    shared: Collaborators[UnitOfWork],
    hasher: PasswordHasher,
    blocklist: Blocklist,
    sealer: Sealer,
    signer: TokenSigner,
    config: AuthConfig,
    *,
    memberships: Memberships | None = None,
    invitations: Invitations | None = None,
    **options: Unpack[ContextOptions],
) -> AuthUseCases:
    """``memberships`` and ``invitations`` reach the workspaces service (for the accounts);
    ``shared`` and ``options`` wire the :class:`UseCaseContext` (see :class:`ContextOptions`)."""
    ctx = UseCaseContext(shared, config, **options)
    uow, clock = shared.uow, shared.clock
    throttling = Throttling(uow, clock, config.throttle)
    peppers = Peppers(uow, clock, sealer)
    issuer = TokenIssuer(uow, sealer, signer, config)
    account_tokens = AccountTokens(ctx, peppers, throttling)
    recovery = RecoveryCodes(ctx, peppers)
    accounts = Accounts(
        ctx,
        hasher,
        blocklist,
        throttling,
        account_tokens,
        memberships=memberships,
        invitations=invitations,
    )
    return AuthUseCases(
        context=ctx,
        throttling=throttling,
        accounts=accounts,
        sessions=Sessions(ctx, hasher, throttling, issuer),
        refresh=Refresh(ctx, sealer, issuer),
        mfa=Mfa(ctx, sealer, throttling, issuer, recovery),
        recovery=recovery,
        passwords=Passwords(ctx, hasher, blocklist, sealer, throttling, account_tokens),
        pins=DeploymentPins(ctx, hasher, throttling, issuer),
        signing_keys=SigningKeys(ctx, sealer, signer, issuer),
        maintenance=Maintenance(ctx, throttling, accounts),
    )
