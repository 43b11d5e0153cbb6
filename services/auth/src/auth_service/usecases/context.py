"""What every auth use case shares: the unit of work, the clock, ids, the settings, and the
audit trail of the call being served.

Audit (DESIGN §4, docs/auth.md "Audit events"): every mutation and every authentication decision
records an event in the auth outbox. Changes record theirs in the change's own transaction
(:meth:`UseCaseContext.audit`); refusals (which change nothing, beyond a throttle counter)
record theirs in a transaction of their own, only for known accounts, PINs and challenges, at
most one per subject and reason per minute (:class:`servicekit.throttle.AuditThrottle`; subjects are account, PIN and challenge ids), and never fail or alter
the refusal itself (:meth:`UseCaseContext.audit_refusal`).

Secrets (passwords, refresh tokens, private keys, TOTP secrets and codes, recovery codes, PINs)
travel only as arguments and return values; they are never logged, never put in an error, never
put in an audit event, and never stored in clear.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Mapping
from typing import NotRequired, TypedDict, Unpack

from servicekit.audit import AuditEvent, AuditMetadataError, Outcome, check_metadata
from servicekit.mail import Mail
from servicekit.throttle import AuditThrottle
from servicekit.usecase import Collaborators

from auth_service.domain import Assurance, User, step_up_problem
from auth_service.ports import UnitOfWork
from auth_service.usecases import errors
from auth_service.usecases.config import AuthConfig

_log = logging.getLogger("auth_service")

# The events of a new session; they also carry the client's user agent (for the security log).
_SESSION_STARTS = frozenset({"user.login", "user.verifyMfa", "totp.confirm"})


class EventDetails(TypedDict):
    """The keyword arguments of :meth:`UseCaseContext.event` after the action and target."""

    actor: str
    workspace_id: NotRequired[str]
    outcome: NotRequired[Outcome]
    client_ip: NotRequired[str]
    metadata: NotRequired[Mapping[str, str] | None]


class SelfEventDetails(TypedDict, total=False):
    """:class:`EventDetails` of an event whose actor is its target user."""

    workspace_id: str
    outcome: Outcome
    client_ip: str
    metadata: Mapping[str, str] | None


class ContextOptions(TypedDict, total=False):
    """The optional wiring auth adds to a :class:`UseCaseContext` (``build_use_cases`` passes it
    on): ``refusals`` limits the refusal events; ``user_agent`` gives the client's user agent."""

    refusals: AuditThrottle | None
    user_agent: Callable[[], str]


def _no_user_agent() -> str:
    return ""


class UseCaseContext:
    """The shared plumbing of the capability classes (one instance per service)."""

    def __init__(
        self,
        shared: Collaborators[UnitOfWork],
        config: AuthConfig,
        **options: Unpack[ContextOptions],
    ) -> None:
        """``shared`` are the collaborators every service's use cases have (unit of work, its
        read-only one for the hot reads GetJwks and GetSessionState, clock, ids, the RPC's audit
        origin, the after-commit hook that wakes the relays); auth's own are
        :class:`ContextOptions`."""
        self.uow, self.clock, self.new_id = shared.uow, shared.clock, shared.new_id
        self.read_uow, self.after_commit = shared.reader, shared.after_commit
        self.config, self._origin = config, shared.origin
        self._refusals = options.get("refusals") or AuditThrottle()
        self._user_agent = options.get("user_agent", _no_user_agent)

    def __repr__(self) -> str:
        return "UseCaseContext()"

    # ---- audit -------------------------------------------------------------------------------

    def event(
        self,
        action: str,
        target: str,
        *,
        actor: str,
        workspace_id: str = "",
        outcome: Outcome = Outcome.SUCCESS,
        client_ip: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> AuditEvent:
        """An event of the call being served; only ids, counts and reasons go in ``metadata``.
        A new session's event also carries the client's user agent (for the security log)."""
        origin = self._origin()
        if metadata and "session_id" in metadata and action in _SESSION_STARTS:
            agent = _safe_user_agent(self._user_agent())
            if agent:
                metadata = {**metadata, "user_agent": agent}
        return AuditEvent.new(
            workspace_id=workspace_id,
            actor=actor,
            action=action,
            target=target,
            time=self.clock.now(),
            outcome=outcome,
            request_id=origin.request_id,
            client_ip=(origin.client_ip or client_ip)[:64],
            metadata=metadata,
        )

    def caller(self) -> str:
        """The acting user or API key of the call being served, else ``system``."""
        actor = self._origin().actor
        return actor if actor.startswith(("user:", "apiKey:")) else "system"

    async def audit(
        self, uow: UnitOfWork, action: str, target: str, **details: Unpack[EventDetails]
    ) -> None:
        """Record an event (:meth:`event`) inside the caller's transaction (it commits with the
        change)."""
        await uow.outbox.record(self.event(action, target, **details))

    async def audit_self(
        self, uow: UnitOfWork, action: str, user_id: str, **details: Unpack[SelfEventDetails]
    ) -> None:
        """Record an event of a user acting on their own account (``users/{id}`` by ``user:{id}``)."""
        await self.audit(uow, action, user_name(user_id), actor=user_actor(user_id), **details)

    async def audit_refusal(
        self,
        subject: str,
        reason: str,
        action: str,
        target: str,
        *,
        actor: str,
        workspace_id: str = "",
        client_ip: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Record a refusal (outcome DENIED) in its own transaction, throttled per subject and
        reason; never raises: the refusal stands whether or not it is recorded."""
        if not self._refusals.allow(f"{action}:{subject}", reason, self.clock.now()):
            return
        try:
            event = self.event(
                action,
                target,
                actor=actor,
                workspace_id=workspace_id,
                outcome=Outcome.DENIED,
                client_ip=client_ip,
                metadata={"reason": reason, **(metadata or {})},
            )
            async with self.uow() as uow:
                await uow.outbox.record(event)
                await uow.commit()
        except Exception:  # noqa: BLE001 - an audit hiccup must not change the answer
            _log.warning("could not record a refused attempt", exc_info=True)
            return
        self.after_commit()

    # ---- shared steps ------------------------------------------------------------------------

    async def send(self, uow: UnitOfWork, to: str, template: str, mail: tuple[str, str]) -> None:
        """Queue a mail in the outbox, inside the caller's transaction."""
        subject, body = mail
        await uow.mail.record(
            Mail.new(to=to, subject=subject, body=body, template=template, now=self.clock.now())
        )

    async def live_user(self, user_id: str) -> User:
        """The user, unless missing or deleted (``USER_NOT_FOUND``)."""
        async with self.uow() as uow:
            user = await uow.users.get(user_id)
        if user is None or user.deleted:
            raise errors.user_not_found()
        return user

    async def has_factor(self, user_id: str) -> bool:
        async with self.uow() as uow:
            return await uow.totp.has_confirmed(user_id)

    def require_step_up(self, assurance: Assurance, has_factor: bool) -> None:
        """A recent login, and aal2 when the user has a factor, or ``STEP_UP_REQUIRED``."""
        problem = step_up_problem(
            assurance, has_factor, self.clock.now(), self.config.step_up_max_age
        )
        if problem is not None:
            raise errors.step_up_required(problem, self.config.step_up_max_age)


# ---- names and small helpers -----------------------------------------------------------------


def user_actor(user_id: str) -> str:
    return f"user:{user_id}"


def user_name(user_id: str) -> str:
    return f"users/{user_id}"


def session_name(user_id: str, session_id: str) -> str:
    return f"users/{user_id}/sessions/{session_id}"


def pin_name(workspace_id: str, deployment_id: str) -> str:
    return f"workspaces/{workspace_id}/deployments/{deployment_id}/pin"


def digest(value: str) -> str:
    """A short stable digest of an attacker-chosen value (an address), for keys and subjects."""
    return hashlib.sha256(value.encode()).hexdigest()[:40]


def same(a: str, b: str) -> bool:
    """Constant-time equality of two secrets."""
    return secrets.compare_digest(a.encode(), b.encode())


def _safe_user_agent(raw: str) -> str:
    """Printable ASCII, at most 200 characters, and nothing that looks like a secret."""
    agent = "".join(ch for ch in raw if 32 <= ord(ch) < 127)[:200]
    try:
        check_metadata({"user_agent": agent})
    except AuditMetadataError:
        return "(withheld)"
    return agent
