"""What the sync and async clients share: a request description, retries, names, paging."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from railguard.errors import parse_retry_after

__all__ = [
    "Call",
    "RetryPolicy",
    "new_request_id",
    "resource",
    "ssl_context",
]

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
