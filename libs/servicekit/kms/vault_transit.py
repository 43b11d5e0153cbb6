"""Production backend: Vault's transit engine through hvac, off the event loop, failing closed.

hvac is synchronous, so every call runs in a worker thread under a semaphore. Errors are mapped
to domain errors *outside* the ``except`` block that caught them: hvac exceptions carry response
bodies (a failed batch decrypt holds the plaintexts of the items that succeeded), so they must
never ride along as ``__cause__`` or ``__context__``.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import requests
from requests.adapters import HTTPAdapter

from servicekit.errors import RailguardError
from servicekit.kms import errors
from servicekit.kms.ciphertext import parse_ciphertext
from servicekit.kms.key_manager import (
    KeyInfo,
    check_batch,
    check_ciphertext_item,
    check_min_version,
    check_plaintext_item,
    check_usable,
)

__all__ = [
    "DEFAULT_KUBERNETES_JWT_PATH",
    "AppRoleAuth",
    "KubernetesAuth",
    "TokenAuth",
    "VaultAuth",
    "VaultTransit",
    "VaultTransitConfig",
]

_T = TypeVar("_T")
_I = TypeVar("_I")
DEFAULT_KUBERNETES_JWT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"


@dataclass(frozen=True, slots=True)
class TokenAuth:
    """A static Vault token (dev, CI, or a token injected by an agent)."""

    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class AppRoleAuth:
    """AppRole login for VMs and CI; re-logs in once when Vault answers 403."""

    role_id: str
    secret_id: str = field(repr=False)
    mount_point: str = "approle"


@dataclass(frozen=True, slots=True)
class KubernetesAuth:
    """Kubernetes login with the pod's service-account JWT, read at each login."""

    role: str
    jwt_path: str = DEFAULT_KUBERNETES_JWT_PATH
    mount_point: str = "kubernetes"


VaultAuth = TokenAuth | AppRoleAuth | KubernetesAuth


@dataclass(frozen=True, slots=True)
class VaultTransitConfig:
    """Where the key lives and how to reach it. TLS verification is always on for https."""

    address: str
    auth: VaultAuth
    key_name: str
    mount_point: str = "transit"
    ca_file: str | None = None
    timeout: float = 10.0
    max_concurrency: int = 8


class _TokenRejected(Exception):
    """Vault answered 401/403: the token is invalid, expired or lacks the capability."""


class VaultTransit:
    """``KeyManager`` on Vault transit with a derived ``aes256-gcm96`` key."""

    def __init__(self, config: VaultTransitConfig) -> None:
        self._config = config
        session = requests.Session()
        # Settings are explicit: no proxy, CA bundle or netrc picked up from the environment.
        session.trust_env = False
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=config.max_concurrency)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        # token="" (not None) stops hvac from reading VAULT_TOKEN or ~/.vault-token.
        self._client = hvac.Client(
            url=config.address,
            token=config.auth.token if isinstance(config.auth, TokenAuth) else "",
            verify=config.ca_file or True,
            timeout=config.timeout,
            session=session,
        )
        self._auth_lock = threading.Lock()
        self._logged_in = isinstance(config.auth, TokenAuth)
        self._generation = 0
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._verify_lock = asyncio.Lock()
        self._verified = False

    def __repr__(self) -> str:
        c = self._config
        return f"VaultTransit(address={c.address!r}, mount={c.mount_point!r}, key={c.key_name!r})"

    # -- KeyManager ---------------------------------------------------------------------------

    async def encrypt(self, plaintext: bytes, context: str) -> str:
        body = _plaintext_body((plaintext, context))
        return await self._transit("encrypt_data", _single(_ciphertext_of), **body)

    async def decrypt(self, ciphertext: str, context: str) -> bytes:
        body = _ciphertext_body((ciphertext, context))
        return await self._transit("decrypt_data", _single(_plaintext_of), **body)

    async def encrypt_batch(self, items: Sequence[tuple[bytes, str]]) -> list[str]:
        return await self._transit_batch("encrypt_data", items, _plaintext_body, _ciphertext_of)

    async def decrypt_batch(self, items: Sequence[tuple[str, str]]) -> list[bytes]:
        return await self._transit_batch("decrypt_data", items, _ciphertext_body, _plaintext_of)

    async def rewrap(self, ciphertext: str, context: str) -> str:
        body = _ciphertext_body((ciphertext, context))
        return await self._transit("rewrap_data", _single(_ciphertext_of), **body)

    async def rewrap_batch(self, items: Sequence[tuple[str, str]]) -> list[str]:
        return await self._transit_batch(
            "rewrap_data", items, _ciphertext_body, _ciphertext_of, ciphertext=None
        )

    async def rotate(self) -> int:
        return (await self._transit("rotate_key", self._info_from)).latest_version

    async def key_info(self) -> KeyInfo:
        return await self._call(lambda client: self._info_from(client, None))

    async def set_min_decryption_version(self, version: int) -> KeyInfo:
        check_min_version(version)
        return await self._transit(
            "update_key_configuration", self._info_from, min_decryption_version=version
        )

    async def self_check(self) -> KeyInfo:
        info = check_usable(await self.key_info())
        self._verified = True
        return info

    async def close(self) -> None:
        self._verified = False
        self._client.adapter.close()

    # -- internals ----------------------------------------------------------------------------

    def _info_from(self, client: Any, response: Any) -> KeyInfo:
        """Key info from a 200 response, or read it when Vault answered 204 (older versions)."""
        if not isinstance(response, dict):
            transit = client.secrets.transit
            response = transit.read_key(self._config.key_name, mount_point=self._config.mount_point)
        data = response["data"]
        return KeyInfo(
            name=str(data["name"]),
            type=str(data["type"]),
            derived=data["derived"] is True,
            latest_version=int(data["latest_version"]),
            min_decryption_version=int(data["min_decryption_version"]),
        )

    async def _transit(
        self, operation: str, read: Callable[[Any, Any], _T], **arguments: Any
    ) -> _T:
        """Call the transit engine's ``operation`` on the key (once it passed ``self_check``);
        ``read(client, response)`` makes the result, inside the call's failure mapping."""

        def call(client: Any) -> _T:
            method = getattr(client.secrets.transit, operation)
            response = method(
                self._config.key_name, mount_point=self._config.mount_point, **arguments
            )
            return read(client, response)

        return await self._verified_call(call)

    async def _transit_batch(
        self,
        operation: str,
        items: Sequence[_I],
        body: Callable[[_I], dict[str, str]],
        read: Callable[[Any], _T],
        **arguments: Any,
    ) -> list[_T]:
        """``operation`` on a checked batch of ``body`` items; ``read`` makes each item's result.

        Vault answers 200 even when items fail, so :func:`_batch_results` checks each one."""
        batch = check_batch(items, body)
        if not batch:
            return []
        read_all = _batched(read, len(batch))
        return await self._transit(operation, read_all, batch_input=batch, **arguments)

    async def _verified_call(self, call: Callable[[Any], _T]) -> _T:
        """Run ``call`` once the key passed ``self_check``: fail closed on a non-derived key."""
        if not self._verified:
            async with self._verify_lock:
                if not self._verified:
                    await self.self_check()
        return await self._call(call)

    async def _call(self, call: Callable[[Any], _T]) -> _T:
        async with self._slots:
            return await asyncio.to_thread(self._call_sync, call)

    def _call_sync(self, call: Callable[[Any], _T]) -> _T:
        for attempt in range(2):
            generation = self._ensure_login()
            try:
                return self._attempt(call)
            except _TokenRejected:
                pass
            if isinstance(self._config.auth, TokenAuth) or attempt:
                break
            # A login-based token may have expired: log in again once, then give up.
            with self._auth_lock:
                if self._generation == generation:
                    self._logged_in = False
        raise errors.permission_denied()

    def _attempt(self, call: Callable[[Any], _T]) -> _T:
        failure: Exception
        try:
            return call(self._client)
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
            failure = _TokenRejected()
        except hvac.exceptions.InvalidRequest as exc:
            failure = _from_invalid_request(exc.errors, exc.json)
        except hvac.exceptions.InvalidPath:
            failure = errors.key_not_found()
        except (hvac.exceptions.VaultError, requests.RequestException):
            # 429, 5xx, 503 sealed, connection refused, timeouts: retryable, and fail closed.
            failure = errors.unavailable()
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            failure = errors.unavailable("Vault sent an unexpected response")
        raise failure

    def _ensure_login(self) -> int:
        with self._auth_lock:
            if not self._logged_in:
                self._client.token = self._login()
                self._logged_in = True
                self._generation += 1
            return self._generation

    def _login(self) -> str:
        auth = self._config.auth
        failure: RailguardError
        try:
            if isinstance(auth, AppRoleAuth):
                response = self._client.auth.approle.login(
                    role_id=auth.role_id,
                    secret_id=auth.secret_id,
                    use_token=False,
                    mount_point=auth.mount_point,
                )
            elif isinstance(auth, KubernetesAuth):
                jwt = Path(auth.jwt_path).read_text(encoding="utf-8").strip()
                response = self._client.auth.kubernetes.login(
                    role=auth.role, jwt=jwt, use_token=False, mount_point=auth.mount_point
                )
            else:
                return auth.token
            token = response["auth"]["client_token"]
            if isinstance(token, str) and token:
                return token
            failure = errors.unavailable("Vault sent an unexpected login response")
        except (
            hvac.exceptions.InvalidRequest,
            hvac.exceptions.Forbidden,
            hvac.exceptions.Unauthorized,
        ):
            failure = errors.permission_denied("Vault login was refused")
        except (hvac.exceptions.VaultError, requests.RequestException):
            failure = errors.unavailable()
        except OSError:
            failure = errors.unavailable("the service-account token file cannot be read")
        except (KeyError, TypeError, ValueError):
            failure = errors.unavailable("Vault sent an unexpected login response")
        raise failure


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError("plaintext is not a string")
    return base64.b64decode(value.encode("ascii"), validate=True)


def _plaintext_body(item: tuple[bytes, str]) -> dict[str, str]:
    """A checked ``(plaintext, context)`` pair as transit's request fields."""
    plaintext, context = check_plaintext_item(item)
    return {"plaintext": _b64(plaintext), "context": _b64(context)}


def _ciphertext_body(item: tuple[str, str]) -> dict[str, str]:
    """A checked ``(ciphertext, context)`` pair as transit's request fields."""
    ciphertext, context = check_ciphertext_item(item)
    return {"ciphertext": str(ciphertext), "context": _b64(context)}


def _ciphertext_of(result: Any) -> str:
    """Accept only a well-formed ciphertext from Vault; anything else is an unexpected response."""
    try:
        return str(parse_ciphertext(result["ciphertext"]))
    except RailguardError:
        pass
    raise ValueError("Vault returned a malformed ciphertext")


def _plaintext_of(result: Any) -> bytes:
    return _unb64(result["plaintext"])


def _single(read: Callable[[Any], _T]) -> Callable[[Any, Any], _T]:
    """A reader of a one-item answer: ``read`` on its ``data``."""
    return lambda _client, response: read(response["data"])


def _batched(read: Callable[[Any], _T], expected: int) -> Callable[[Any, Any], list[_T]]:
    """A reader of a batch answer of ``expected`` items: ``read`` on each item's result."""
    return lambda _client, response: [read(r) for r in _batch_results(response, expected)]


def _batch_results(response: Any, expected: int) -> list[dict[str, Any]]:
    results = response["data"]["batch_results"]
    if not isinstance(results, list) or len(results) != expected:
        raise ValueError("batch result count differs from the request")
    for index, item in enumerate(results):
        if item.get("error"):
            raise errors.in_batch(_from_message(str(item["error"])), index)
    return results


def _from_invalid_request(messages: Any, body: Any) -> RailguardError:
    """Map a Vault 400: a top-level ``errors`` list, or a failed batch's per-item errors."""
    if isinstance(messages, list) and messages:
        return _from_message(str(messages[0]))
    data = body.get("data") if isinstance(body, dict) else None
    results = data.get("batch_results") if isinstance(data, dict) else None
    for index, item in enumerate(results if isinstance(results, list) else []):
        if isinstance(item, dict) and item.get("error"):
            return errors.in_batch(_from_message(str(item["error"])), index)
    return errors.request_rejected()


def _from_message(message: str) -> RailguardError:
    """Classify Vault's documented transit error strings; the string itself is never surfaced."""
    text = message.lower()
    if "message authentication failed" in text:
        return errors.context_mismatch()
    if "disallowed by policy (too old)" in text:
        return errors.version_retired()
    if "invalid ciphertext" in text or "base64" in text:
        return errors.ciphertext_invalid()
    if "'context'" in text or "context should be set" in text:
        return errors.context_invalid("rejected by Vault")
    if "key not found" in text or "no existing key named" in text or "invalid key name" in text:
        return errors.key_not_found()
    if "min decryption version" in text:
        return errors.version_invalid("rejected by Vault")
    return errors.request_rejected()
