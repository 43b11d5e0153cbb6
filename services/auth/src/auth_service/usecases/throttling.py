"""Attempt throttling as a collaborator of the use cases: which counters an attempt takes, and
how it takes (reserves) and gives them back (settles).

An attempt reserves one failure on each of its counters *before* the secret is checked
(``domain.throttle``); a success then resets or refunds them, in the transaction that records
the success when the caller has one (:meth:`Throttling.settle_in`). Reservation is one
transaction of compare-and-sets over all the attempt's counters, retried under contention, and
fails closed when contention does not end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

from servicekit.clock import Clock

from auth_service.domain import ThrottlePolicy, admit
from auth_service.ports import UnitOfWork, UnitOfWorkFactory
from auth_service.usecases import errors
from auth_service.usecases.config import ThrottlePolicies
from auth_service.usecases.context import digest

_log = logging.getLogger("auth_service")

_RESERVE_ROUNDS = 50


@dataclass(frozen=True, slots=True)
class Bucket:
    """One attempt counter: its storage key and its policy."""

    key: str
    policy: ThrottlePolicy


def _ip(client_ip: str) -> str:
    return client_ip[:64] or "-"


class Throttling:
    """The attempt limits of login, MFA, PINs, mails and mailed tokens."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, policies: ThrottlePolicies) -> None:
        self._uow, self._clock, self._policies = uow, clock, policies

    def __repr__(self) -> str:
        return "Throttling()"

    # ---- the counters --------------------------------------------------------------------------

    def login_account(self, address: str) -> Bucket:
        """Keyed by the normalised address: an unknown account counts like a known one."""
        return Bucket(f"login:acct:{digest(address)}", self._policies.login_account)

    def login_ip(self, client_ip: str) -> Bucket:
        return Bucket(f"login:ip:{_ip(client_ip)}", self._policies.login_ip)

    def mfa_user(self, user_id: str) -> Bucket:
        return Bucket(f"mfa:user:{user_id}", self._policies.mfa_user)

    def mfa_ip(self, client_ip: str) -> Bucket:
        return Bucket(f"mfa:ip:{_ip(client_ip)}", self._policies.mfa_ip)

    def pin_ip(self, client_ip: str) -> Bucket:
        return Bucket(f"pin:ip:{_ip(client_ip)}", self._policies.pin_ip)

    def pin_deployment(self, workspace_id: str, deployment_id: str) -> Bucket:
        return Bucket(f"pin:dep:{workspace_id}/{deployment_id}", self._policies.pin_deployment)

    def pin_deployment_ip(self, workspace_id: str, deployment_id: str, client_ip: str) -> Bucket:
        return Bucket(
            f"pin:depip:{workspace_id}/{deployment_id}/{_ip(client_ip)}",
            self._policies.pin_deployment_ip,
        )

    def mail(self, kind: str, address: str, client_ip: str) -> list[Bucket]:
        """Per client IP, then per recipient address (``kind``: signup, verify, change, reset)."""
        return [
            Bucket(f"{kind}:ip:{_ip(client_ip)}", self._policies.mail_ip),
            Bucket(f"{kind}:addr:{digest(address)}", self._policies.mail_address),
        ]

    def token_ip(self, client_ip: str) -> Bucket:
        return Bucket(f"token:ip:{_ip(client_ip)}", self._policies.token_ip)

    def idle_after(self) -> dt.timedelta:
        """How long an unused counter is kept (maintenance drops older ones)."""
        return max(self._policies.login_account.reset_after, self._policies.login_ip.reset_after)

    # ---- taking and giving back ------------------------------------------------------------

    async def reserve(self, buckets: list[Bucket], reason: str) -> None:
        """Count one attempt on every bucket, or refuse and count it on none.

        One transaction for all the buckets: each counter is read (locked ``FOR UPDATE`` on
        PostgreSQL) and stored by compare-and-set, in key order so two attempts never wait on
        each other's rows; a refusal on any bucket rolls back the others, and a lost
        compare-and-set retries the whole round. A refusal waits the longest ``retry_after``.
        """
        ordered = sorted({bucket.key: bucket for bucket in buckets}.values(), key=_by_key)
        for round_ in range(_RESERVE_ROUNDS):
            try:
                retry_after = await self._reserve_round(ordered)
            except _Lost:
                await asyncio.sleep(0.001 * (round_ % 10))
                continue
            if retry_after is not None:
                raise errors.throttled(reason, retry_after)
            return
        raise errors.throttled(reason, 1.0)  # contention beyond reason: fail closed

    async def _reserve_round(self, buckets: list[Bucket]) -> float | None:
        """None when every bucket took the attempt, else the refusal's wait; :class:`_Lost`."""
        now = self._clock.now()
        started: list[tuple[Bucket, int]] = []
        async with self._uow() as uow:
            decisions = []
            for bucket in buckets:
                state = await uow.throttle.get(bucket.key)
                decisions.append((bucket, state, admit(bucket.policy, state, now)))
            refusals = [d.retry_after for _, _, d in decisions if not d.allowed]
            if refusals:
                return max(refusals)  # nothing was written: the unit of work rolls back
            for bucket, state, decision in decisions:
                if not await uow.throttle.store(bucket.key, state, decision.state):
                    raise _Lost  # the unit of work rolls back what this round stored
                if decision.started_block:
                    started.append((bucket, decision.state.failures))
            await uow.commit()
        for bucket, failures in started:
            # Audit hook: a backoff (lockout) started on this key.
            _log.warning(
                "attempts throttled", extra={"throttle_key": bucket.key, "failures": failures}
            )
        return None

    async def settle(
        self, *, reset: list[Bucket] | None = None, refund: list[Bucket] | None = None
    ) -> None:
        """After a success: clear ``reset`` counters, give back this attempt on ``refund``."""
        async with self._uow() as uow:
            await self.settle_in(uow, reset=reset, refund=refund)
            await uow.commit()

    @staticmethod
    async def settle_in(
        uow: UnitOfWork, *, reset: list[Bucket] | None = None, refund: list[Bucket] | None = None
    ) -> None:
        """:meth:`settle` inside the caller's unit of work: it counts only if that commits.

        Rows are written in key order, the order :meth:`reserve` locks them in.
        """
        steps = [(b.key, True) for b in reset or []] + [(b.key, False) for b in refund or []]
        for key, clear in sorted(steps):
            await (uow.throttle.reset(key) if clear else uow.throttle.refund(key))


def _by_key(bucket: Bucket) -> str:
    return bucket.key


class _Lost(Exception):
    """A compare-and-set lost to a concurrent attempt: retry the round."""
