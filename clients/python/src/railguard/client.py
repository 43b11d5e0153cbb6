"""The synchronous client: ``Client(base_url, ...)`` with one attribute per resource.

Authentication is an API key (``api_key=``) or a user session: ``login()`` (with the MFA step),
or ``tokens=`` from an earlier login. Access tokens are refreshed before they expire and once more
if the edge answers ``TOKEN_EXPIRED``/``TOKEN_INVALID``; ``on_tokens`` is told every new pair (to store it).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
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
from railguard._flows import Blocking
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

__all__ = ["Client"]


class _Transport(Blocking):
    """Sends a ``Call`` with ``httpx.Client``; the decisions are ``_core.Exchange``'s."""

    def __init__(
        self,
        http: httpx.Client,
        retry: RetryPolicy,
        api_key: str | None,
        tokens: Tokens | None,
        on_tokens: Callable[[Tokens], None] | None,
    ) -> None:
        super().__init__(api_key, tokens, on_tokens)
        self.http, self.retry = http, retry
        self._lock = threading.Lock()

    def refresh(self, stale: Tokens | None = None) -> Tokens:
        with self._lock:
            current = self.refreshable()
            if stale is not None and current.access_token != stale.access_token:
                return current  # another thread refreshed meanwhile
            tokens = tokens_of(self.send(ops.refresh(current.refresh_token)))
            self.set_tokens(tokens)
            return tokens

    def send(self, call: Call) -> Json:
        if (due := self.refresh_due(call)) is not None:
            self.refresh(due)
        exchange = Exchange(call, self.retry, self)
        while True:
            try:
                response = self.http.request(
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
                self.refresh(self.tokens)
            else:
                time.sleep(step.wait)


class Audit(AuditLog["_Transport"]):
    """A workspace's hash-chained audit log (Admin+, or a key with ``audit:read``)."""

    def __init__(self, transport: _Transport, base_url: str, verify: bool | str | ssl.SSLContext):
        super().__init__(transport)
        self._base_url, self._verify = base_url, verify

    def stream(
        self, workspace: str, *, after: int = 0, open_timeout: float = 10
    ) -> Iterator[AuditEvent]:
        """Every event after sequence ``after``, then each new one as it is appended (WSS)."""
        from websockets.sync.client import connect

        if (due := self._t.refresh_due()) is not None:
            self._t.refresh(due)
        url = stream_url(self._base_url, ops.audit_stream_path(workspace, after))
        with (
            stream_errors(),
            connect(url, **stream_options(self._t, self._verify, open_timeout)) as socket,
        ):
            for message in socket:
                if (event := stream_event(message)) is not None:
                    yield cast(AuditEvent, event)


class Client(Account["_Transport"]):
    """A synchronous Railguard client. Use as a context manager, or call ``close()``."""

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
        self._http = httpx.Client(**http_options(self.base_url, verify, timeout))
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

    def refresh(self) -> Tokens:
        """Renew the access token now (it also happens by itself before expiry)."""
        return self._t.refresh()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
