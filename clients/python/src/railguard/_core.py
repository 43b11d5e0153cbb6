"""What the sync and async clients share, free of I/O: the request a call makes, the credentials
it carries, what to do with each answer (refresh, retry, wait, raise), names and paging.

``client.py`` and ``aio.py`` are thin shells over this module: they only send and sleep, the one
with ``httpx.Client`` and ``time.sleep``, the other with ``httpx.AsyncClient`` and ``asyncio.sleep``.
"""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from railguard.errors import (
    ConnectionFailed,
    MfaRequired,
    RailguardError,
    error_from_parts,
    error_from_response,
    parse_retry_after,
)
from railguard.session import Tokens

__all__ = [
    "Call",
    "AuthState",
    "Exchange",
    "RetryPolicy",
    "new_request_id",
    "resource",
    "ssl_context",
]

Json = dict[str, Any]

# a 401 with one of these is answered by one refresh and one retry: the token expired early
# (clock skew) or its signing key has since been dropped
REFRESH_ON = frozenset({"TOKEN_EXPIRED", "TOKEN_INVALID"})

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
USER_AGENT = "railguard-python/0.1.0"


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request to the edge, described before it is sent (so both clients send it)."""

    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    authenticated: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)
    request_id: str = ""  # set for creates: the server deduplicates a retried create

    @property
    def retryable(self) -> bool:
        return self.method in IDEMPOTENT_METHODS or bool(self.request_id)

    def query(self) -> dict[str, str]:
        q = dict(self.params)
        if self.request_id:
            q["requestId"] = self.request_id
        return q


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries on 429/503, honouring ``Retry-After``; bounded in count and in wait.

    Only idempotent requests (GET, HEAD, OPTIONS, PUT, DELETE) and requests carrying a request id
    are retried; a ``Retry-After`` longer than ``max_wait`` is not waited for (the error is raised).
    ``on_retry(status, delay)`` is called before each wait.
    """

    max_retries: int = 2
    max_wait: float = 30.0
    backoff: float = 0.5  # when a 503 carries no Retry-After: 0.5 s, 1 s, 2 s …
    on_retry: Callable[[int, float], None] | None = None

    def delay(self, call: Call, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying ``call``, or None to give up with this response."""
        if response.status_code not in (429, 503) or attempt >= self.max_retries:
            return None
        if not call.retryable:
            return None
        wait = parse_retry_after(response.headers.get("retry-after"))
        if wait is None:
            wait = self.backoff * (2**attempt)
        if wait > self.max_wait:
            return None
        if self.on_retry is not None:
            self.on_retry(response.status_code, wait)
        return wait


def new_request_id() -> str:
    return uuid.uuid4().hex


def ssl_context(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    """``verify`` as httpx takes it: True (system CAs), a CA bundle path, or a context."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


def resource(collection: str, name_or_id: str) -> str:
    """``workspaces/abc`` from ``abc`` or ``workspaces/abc``; ids are URL-quoted."""
    if name_or_id.startswith(collection + "/"):
        return name_or_id
    return f"{collection}/{quote(name_or_id, safe='')}"


def child(parent: str, collection: str, name_or_id: str) -> str:
    """``workspaces/w/apiKeys/k`` from a parent and ``k`` or the full name."""
    if "/" in name_or_id:
        return name_or_id
    return f"{parent}/{collection}/{quote(name_or_id, safe='')}"


def page_params(page_size: int | None, page_token: str, **extra: str) -> dict[str, str]:
    params = {k: v for k, v in extra.items() if v}
    if page_size:
        params["pageSize"] = str(page_size)
    if page_token:
        params["pageToken"] = page_token
    return params


def parse_json(response: httpx.Response) -> Json:
    """An answer's JSON body as an object (``{}`` when empty, ``{"value": …}`` for a bare value)."""
    if not response.content:
        return {}
    data = json.loads(response.content)
    return data if isinstance(data, dict) else {"value": data}


def http_options(
    base_url: str, verify: bool | str | ssl.SSLContext, timeout: float
) -> dict[str, Any]:
    """The keyword arguments both ``httpx.Client`` and ``httpx.AsyncClient`` are built with."""
    return {
        "base_url": base_url,
        "verify": ssl_context(verify),
        "timeout": timeout,
        "headers": {"User-Agent": USER_AGENT},
    }


def tokens_from_login(body: Json) -> Tokens:
    """The tokens of a login answer, or ``MfaRequired`` when it carries a challenge."""
    challenge = body.get("mfaChallenge")
    if challenge:
        raise MfaRequired(
            str(challenge.get("challengeToken", "")),
            tuple(challenge.get("methods") or ()),
            int(challenge.get("expiresIn") or 0),
        )
    return Tokens.from_pair(body.get("tokens") or {})


def tokens_of(body: Json) -> Tokens:
    """The token pair of a refresh or MFA answer."""
    return Tokens.from_pair(body.get("tokens") or {})


class AuthState:
    """What a call carries: an API key, or a user's tokens (told to ``on_tokens`` when renewed).

    The I/O-free half of both transports; they add the sending, the sleeping and the refresh call.
    """

    def __init__(
        self,
        api_key: str | None,
        tokens: Tokens | None,
        on_tokens: Callable[[Tokens], None] | None,
    ) -> None:
        self.api_key, self.tokens, self.on_tokens = api_key, tokens, on_tokens

    def set_tokens(self, tokens: Tokens) -> None:
        self.tokens = tokens
        if self.on_tokens is not None:
            self.on_tokens(tokens)

    def auth_headers(self) -> dict[str, str]:
        if self.api_key:
            return {"X-API-Key": self.api_key}
        if self.tokens is not None:
            return {"Authorization": f"Bearer {self.tokens.access_token}"}
        return {}

    def headers(self, call: Call, request_id: str) -> dict[str, str]:
        # one X-Request-Id per logical call, kept across refresh and retries (an edge that keeps
        # a caller's id reports it back as the problem's request_id)
        headers = {"X-Request-Id": request_id, **call.headers}
        if call.authenticated:
            headers.update(self.auth_headers())
        return headers

    def refresh_due(self, call: Call | None = None) -> Tokens | None:
        """The tokens to refresh before sending ``call`` (they are about to expire), else None."""
        if call is not None and not call.authenticated:
            return None
        if self.api_key or self.tokens is None or not self.tokens.needs_refresh():
            return None
        return self.tokens

    def refreshable(self) -> Tokens:
        """The current tokens, to trade for new ones; ``NOT_LOGGED_IN`` without a refresh token."""
        if self.tokens is None or not self.tokens.refresh_token:
            raise RailguardError(401, "NOT_LOGGED_IN", "no refresh token; log in first")
        return self.tokens


@dataclass(frozen=True, slots=True)
class Step:
    """What to do after an answer: return ``body``, or refresh and resend, or wait and resend."""

    body: Json | None = None
    refresh: bool = False
    wait: float = 0.0


class Exchange:
    """The decisions of one logical call over its attempts, free of I/O.

    A success returns its body; the first ``TOKEN_EXPIRED``/``TOKEN_INVALID`` of a user session is
    answered by one refresh and a resend; a 429/503 by the ``RetryPolicy``; anything else raises the
    typed error of the problem+json answer.
    """

    def __init__(self, call: Call, retry: RetryPolicy, auth: AuthState) -> None:
        self.call, self.retry, self.auth = call, retry, auth
        self.request_id = new_request_id()
        self.attempt, self.refreshed = 0, False

    def headers(self) -> dict[str, str]:
        return self.auth.headers(self.call, self.request_id)

    def answer(self, response: httpx.Response) -> Step:
        if response.status_code < 400:
            return Step(body=parse_json(response))
        error = error_from_response(response)
        creds = self.auth
        if (
            error.code in REFRESH_ON
            and self.call.authenticated
            and not self.refreshed
            and not creds.api_key
            and creds.tokens is not None
            and creds.tokens.refresh_token
        ):
            self.refreshed = True
            return Step(refresh=True)
        delay = self.retry.delay(self.call, response, self.attempt)
        if delay is None:
            raise error
        self.attempt += 1
        return Step(wait=delay)


def connection_failed(exc: Exception) -> ConnectionFailed:
    return ConnectionFailed(f"{type(exc).__name__}: {exc}")


def next_page_token(page: Json) -> str:
    return str(page.get("nextPageToken") or "")


def websocket_ssl(verify: bool | str | ssl.SSLContext) -> ssl.SSLContext:
    """An SSL context for the WSS stream from the same ``verify`` the HTTP client takes."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def stream_url(base_url: str, path: str) -> str:
    return base_url.replace("https://", "wss://", 1) + path


def stream_options(
    auth: AuthState, verify: bool | str | ssl.SSLContext, open_timeout: float
) -> dict[str, Any]:
    """The keyword arguments of both websockets ``connect`` functions for the audit stream."""
    return {
        "ssl": websocket_ssl(verify),
        "additional_headers": auth.auth_headers(),
        "open_timeout": open_timeout,
        "user_agent_header": USER_AGENT,
    }


def stream_event(message: str | bytes) -> Json | None:
    event = json.loads(message)
    return event if isinstance(event, dict) else None


@contextmanager
def stream_errors() -> Iterator[None]:
    """The audit stream's failures as the SDK's errors, the same in the sync and async clients."""
    from websockets.exceptions import ConnectionClosedError, InvalidStatus, WebSocketException

    try:
        yield
    except InvalidStatus as exc:  # the handshake was refused: a problem+json answer
        raise error_from_parts(
            exc.response.status_code,
            bytes(exc.response.body or b""),
            dict(exc.response.headers),
        ) from None
    except ConnectionClosedError as exc:  # e.g. 1008: the credential expired or was revoked
        reason = exc.rcvd.reason if exc.rcvd else ""
        code = exc.rcvd.code if exc.rcvd else 1006
        raise RailguardError(0, "STREAM_CLOSED", f"closed by the edge ({code}) {reason}") from None
    except (OSError, WebSocketException) as exc:
        raise connection_failed(exc) from None
