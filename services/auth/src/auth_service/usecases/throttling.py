"""Attempt throttling as a collaborator of the use cases: which counters an attempt takes, and
how it takes (reserves) and gives them back (settles).

An attempt reserves one failure on each of its counters *before* the secret is checked
(``domain.throttle``); a success then resets or refunds them. Reservation is a compare-and-set,
retried under contention, and fails closed when contention does not end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

from servicekit.clock import Clock

from auth_service.domain import ThrottlePolicy, admit
from auth_service.ports import UnitOfWorkFactory
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
        """Count one attempt on every bucket, or refuse (and give back what was taken)."""
        taken: list[Bucket] = []
        for bucket in buckets:
            retry_after = await self._reserve_one(bucket)
            if retry_after is not None:
                await self.settle(refund=taken)
                raise errors.throttled(reason, retry_after)
            taken.append(bucket)

    async def _reserve_one(self, bucket: Bucket) -> float | None:
        for round_ in range(_RESERVE_ROUNDS):
            now = self._clock.now()
            async with self._uow() as uow:
                state = await uow.throttle.get(bucket.key)
                decision = admit(bucket.policy, state, now)
                if not decision.allowed:
                    return decision.retry_after
                if await uow.throttle.store(bucket.key, state, decision.state):
                    await uow.commit()
                    if decision.started_block:
                        # Audit hook: a backoff (lockout) started on this key.
                        _log.warning(
                            "attempts throttled",
                            extra={
                                "throttle_key": bucket.key,
                                "failures": decision.state.failures,
                            },
                        )
                    return None
            await asyncio.sleep(0.001 * (round_ % 10))
        return 1.0  # contention beyond reason: fail closed

    async def settle(
        self, *, reset: list[Bucket] | None = None, refund: list[Bucket] | None = None
    ) -> None:
        """After a success: clear ``reset`` counters, give back this attempt on ``refund``."""
        async with self._uow() as uow:
            for bucket in reset or []:
                await uow.throttle.reset(bucket.key)
            for bucket in refund or []:
                await uow.throttle.refund(bucket.key)
            await uow.commit()
