"""Refresh-token rotation: each token is used once; a loser of the rotation race is answered
with the winner's child during a short grace window; any other reuse revokes the family."""

from __future__ import annotations

import logging

from servicekit.audit import Outcome

from auth_service.domain import (
    RefreshRecord,
    Replay,
    classify_replay,
    new_refresh_token,
    token_hash,
    well_formed,
)
from auth_service.ports import Sealer
from auth_service.usecases import errors
from auth_service.usecases.config import TokenPair
from auth_service.usecases.context import UseCaseContext, session_name
from auth_service.usecases.tokens import TokenIssuer

_log = logging.getLogger("auth_service")


def _grace_context(token_id: str) -> str:
    return f"auth/refresh-grace/{token_id}"


class Refresh:
    def __init__(self, ctx: UseCaseContext, sealer: Sealer, issuer: TokenIssuer) -> None:
        self._ctx, self._sealer, self._issuer = ctx, sealer, issuer
        self._config = ctx.config

    def __repr__(self) -> str:
        return "Refresh()"

    async def refresh(self, token: str) -> TokenPair:
        if not well_formed(token):
            raise errors.invalid_refresh()
        ctx = self._ctx
        digest = token_hash(token)
        # Two passes at most: a caller that loses the rotation race re-reads the winner's result
        # and is answered through the grace path, with the same child.
        for _ in range(2):
            now = ctx.clock.now()
            async with ctx.uow() as uow:
                record = await uow.refresh_tokens.by_hash(digest)
                if record is None:
                    raise errors.invalid_refresh()
                session = await uow.sessions.get(record.session_id)
                if session is None or not session.active(now):
                    raise errors.invalid_refresh()
                user = await uow.users.get(session.user_id)
                if user is None or user.deleted:
                    raise errors.invalid_refresh()
                if not record.rotated:
                    child = new_refresh_token()
                    child_id = ctx.new_id()
                    sealed = await self._sealer.encrypt(child.encode(), _grace_context(child_id))
                    if await uow.refresh_tokens.claim(record.id, now, child_id, sealed):
                        await uow.refresh_tokens.add(
                            RefreshRecord(child_id, session.id, token_hash(child), now)
                        )
                        session.touch(now, self._config.sessions)
                        await uow.sessions.save(session)
                        await uow.refresh_tokens.forget_grace_secrets(
                            now - self._config.sessions.grace, session.id
                        )
                        await uow.commit()
                        return await self._issuer.pair(session, child, now)
                    continue
                current_child = (
                    await uow.refresh_tokens.get(record.child_id) if record.child_id else None
                )
                if (
                    classify_replay(record, current_child, now, self._config.sessions.grace)
                    is Replay.GRACE
                ):
                    assert record.sealed_child is not None and record.child_id is not None
                    plain = await self._sealer.decrypt(
                        record.sealed_child, _grace_context(record.child_id)
                    )
                    return await self._issuer.pair(session, plain.decode(), now)
                session.revoke(now, "refresh_token_reuse")
                await uow.sessions.save(session)
                # The key security event: a rotated-out token came back, so one of its holders
                # is not the user; the whole family (the session) is revoked.
                await ctx.audit(
                    uow,
                    "refreshToken.reuse",
                    session_name(session.user_id, session.id),
                    actor="system",
                    outcome=Outcome.DENIED,
                    metadata={
                        "session_id": session.id,
                        "user_id": session.user_id,
                        "reason": "refresh_token_reuse",
                        "family_revoked": "true",
                    },
                )
                await uow.commit()
                ctx.after_commit()
                _log.warning(
                    "refresh token reuse: session revoked",
                    extra={"session_id": session.id, "user_id": session.user_id},
                )
                raise errors.invalid_refresh()
        raise errors.invalid_refresh()

    async def forget_grace_secrets(self) -> int:
        """Delete sealed refresh-token children whose grace window has ended."""
        async with self._ctx.uow() as uow:
            count = await uow.refresh_tokens.forget_grace_secrets(
                self._ctx.clock.now() - self._config.sessions.grace
            )
            await uow.commit()
        return count
