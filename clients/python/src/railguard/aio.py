"""The asyncio client: ``AsyncClient(base_url, ...)``, the same surface as ``Client`` awaited.

Authentication is an API key (``api_key=``) or a user session: ``login()`` (with the MFA step),
or ``tokens=`` from an earlier login. Access tokens are refreshed before they expire and once more
if the edge answers ``TOKEN_EXPIRED``; ``on_tokens`` is told every new pair (to store it).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from typing import cast

import httpx

from railguard import ops
from railguard._core import (
    Call,
    Exchange,
    Json,
    RetryPolicy,
    connection_failed,
    http_options,
    stream_errors,
    stream_event,
    stream_options,
    stream_url,
    tokens_of,
)
from railguard._flows import Awaiting
from railguard._resources import (
    Account,
    ApiKeys,
    AuditLog,
    Credentials,
    Deployments,
    Members,
    Mfa,
    Sessions,
    Users,
    Webhooks,
    Workspaces,
)
from railguard.models import AuditEvent
from railguard.session import Tokens

__all__ = ["AsyncClient"]


class _Transport(Awaiting):
    """Sends a ``Call`` with ``httpx.AsyncClient``; the decisions are ``_core.Exchange``'s."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        retry: RetryPolicy,
        api_key: str | None,
        tokens: Tokens | None,
        on_tokens: Callable[[Tokens], None] | None,
    ) -> None:
        super().__init__(api_key, tokens, on_tokens)
        self.http, self.retry = http, retry
        self._lock = asyncio.Lock()

    async def refresh(self, stale: Tokens | None = None) -> Tokens:
        async with self._lock:
            current = self.refreshable()
            if stale is not None and current.access_token != stale.access_token:
                return current  # another task refreshed meanwhile
            tokens = tokens_of(await self.send(ops.refresh(current.refresh_token)))
            self.set_tokens(tokens)
            return tokens

    async def send(self, call: Call) -> Json:
        if (due := self.refresh_due(call)) is not None:
            await self.refresh(due)
        exchange = Exchange(call, self.retry, self)
        while True:
            try:
                response = await self.http.request(
                    call.method,
                    call.path,
                    params=call.query(),
                    json=call.body,
                    headers=exchange.headers(),
                )
            except httpx.HTTPError as exc:
                raise connection_failed(exc) from None
            step = exchange.answer(response)
            if step.body is not None:
                return step.body
            if step.refresh:
                await self.refresh(self.tokens)
            else:
                await asyncio.sleep(step.wait)


class Audit(AuditLog["_Transport"]):
    """A workspace's hash-chained audit log (Admin+, or a key with ``audit:read``)."""

    def __init__(self, transport: _Transport, base_url: str, verify: bool | str | ssl.SSLContext):
        super().__init__(transport)
        self._base_url, self._verify = base_url, verify

    async def stream(
        self, workspace: str, *, after: int = 0, open_timeout: float = 10
    ) -> AsyncIterator[AuditEvent]:
        """Every event after sequence ``after``, then each new one as it is appended (WSS)."""
        from websockets.asyncio.client import connect

        if (due := self._t.refresh_due()) is not None:
            await self._t.refresh(due)
        url = stream_url(self._base_url, ops.audit_stream_path(workspace, after))
        with stream_errors():
            async with connect(
                url, **stream_options(self._t, self._verify, open_timeout)
            ) as socket:
                async for message in socket:
                    if (event := stream_event(message)) is not None:
                        yield cast(AuditEvent, event)


class AsyncClient(Account["_Transport"]):
    """An asyncio Railguard client. Use as ``async with``, or ``await aclose()``."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        tokens: Tokens | None = None,
        verify: bool | str | ssl.SSLContext = True,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        on_tokens: Callable[[Tokens], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(**http_options(self.base_url, verify, timeout))
        t = _Transport(self._http, retry or RetryPolicy(), api_key, tokens, on_tokens)
        super().__init__(t)
        self.users, self.sessions, self.mfa = Users(t), Sessions(t), Mfa(t)
        self.workspaces, self.members = Workspaces(t), Members(t)
        self.api_keys, self.credentials, self.webhooks = ApiKeys(t), Credentials(t), Webhooks(t)
        self.audit = Audit(t, self.base_url, verify)
        self.deployments = Deployments(t)

    @property
    def tokens(self) -> Tokens | None:
        return self._t.tokens

    async def refresh(self) -> Tokens:
        """Renew the access token now (it also happens by itself before expiry)."""
        return await self._t.refresh()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
