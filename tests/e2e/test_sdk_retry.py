"""The SDK's retries against the edge's real 429: Retry-After honoured, bounded, and only for
requests that are safe to repeat."""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import Iterator

import httpx
import pytest
from devstack import Stack, StackPorts
from railguard import Client, RetryPolicy
from railguard.errors import RateLimited

from .conftest import PASSWORD, running_stack

# at 0.1 the read class allows 60 a minute (one every second), write 12 (one every 5 s), auth 3
SCALE = "0.1"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(
        tmp_path_factory.mktemp("retry-stack"),
        ports=StackPorts.free(),
        services=("auth", "workspaces"),
        env={"RAILGUARD_EDGE_RATE_LIMIT_SCALE": SCALE, "RAILGUARD_LOG_LEVEL": "WARNING"},
    )
    with running_stack(s) as running:
        yield running


def _exhaust(stack: Stack, token: str, method: str, path: str) -> float:
    """Spend the caller's bucket with plain HTTP until the edge answers 429; its Retry-After."""
    context = ssl.create_default_context(cafile=str(stack.certs / "ca.crt"))
    with httpx.Client(base_url=stack.url, verify=context) as raw:
        for _ in range(200):
            body = {} if method == "POST" else None
            r = raw.request(method, path, headers={"Authorization": f"Bearer {token}"}, json=body)
            if r.status_code == 429:
                return float(r.headers["Retry-After"])
    raise AssertionError("the edge never limited")


def test_retry_after_is_honoured_for_idempotent_requests_only(stack: Stack) -> None:
    retries: list[tuple[int, float]] = []
    policy = RetryPolicy(
        max_retries=3, on_retry=lambda status, wait: retries.append((status, wait))
    )
    ca = str(stack.certs / "ca.crt")
    with Client(stack.url, verify=ca, retry=policy) as rg:
        email = f"retry{secrets.token_hex(4)}@example.com"
        rg.sign_up(email, PASSWORD)
        token = rg.login(email, PASSWORD).access_token

        retry_after = _exhaust(stack, token, "GET", "/v1/users/me")
        started = time.monotonic()
        assert rg.users.me()["email"] == email  # a GET: waited for, then answered
        elapsed = time.monotonic() - started
        assert retries and retries[0] == (429, retry_after) and retry_after >= 1
        assert elapsed >= retry_after, "the client waited as long as the server asked"

        # a wait longer than max_wait is not waited for: the typed error carries Retry-After
        with Client(
            stack.url, verify=ca, tokens=rg.tokens, retry=RetryPolicy(max_wait=0.1)
        ) as fast:
            _exhaust(stack, token, "GET", "/v1/users/me")
            started = time.monotonic()
            with pytest.raises(RateLimited) as limited:
                fast.users.me()
            assert time.monotonic() - started < 1
        assert limited.value.status == 429 and limited.value.code
        assert limited.value.retry_after is not None and limited.value.retry_after >= 1

        # a POST without a request id may not be repeated: refused at once, no retry
        retries.clear()
        _exhaust(stack, token, "POST", "/v1/users/me/sessions/nope:revoke")
        with pytest.raises(RateLimited):
            rg.sessions.revoke("nope")
        assert retries == []
