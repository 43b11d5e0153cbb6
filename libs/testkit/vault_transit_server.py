"""A transit-compatible Vault for tests: Vault's documented HTTP behaviour, served in-process.

(Over 500 lines: it follows Vault's API route by route, one place to compare with Vault's docs.)

It answers ``sys/health``, AppRole and Kubernetes login, and the transit endpoints a client needs
(keys create/read/config/rotate; encrypt, decrypt and rewrap, single and batch) with Vault's status
codes, JSON envelopes and error strings, derived keys (HKDF-SHA256 over the context) and the
``vault:v<N>:`` format. Tokens carry path policies; an encrypt on a missing key needs ``create``.
Test toggles: ``sealed`` (503 "Vault is sealed"), ``deny`` (403 for every token) and
``down()``/``up()`` (stop and resume listening on the same port).
Not emulated: convergent encryption, trim, delete, datakey, HMAC/sign, namespaces, token TTLs.

    with VaultTransitServer() as vault:
        client = hvac.Client(url=vault.address, token=vault.root_token)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["Policy", "VaultTransitServer", "running_vault_transit_server"]

Policy = Mapping[str, Iterable[str]]
"""Path pattern (exact, or a prefix ending in ``*``) → capabilities, as in a Vault ACL policy."""

PERMISSION_DENIED = "1 error occurred:\n\t* permission denied\n\n"
UNSUPPORTED_PATH = "1 error occurred:\n\t* unsupported path\n\n"
MISSING_CONTEXT = (
    "missing 'context' for key derivation; the key was created using a derived key, which means "
    "additional, per-request information must be included in order to perform operations with "
    "the key"
)
TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
_KEY_SIZES = {"aes256-gcm96": 32, "aes128-gcm96": 16, "chacha20-poly1305": 32}
_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_GO_ATOI = re.compile(r"[+-]?[0-9]{1,18}")
_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


class _VaultError(Exception):
    def __init__(self, status: int, *messages: str) -> None:
        super().__init__(status)
        self.status = status
        self.messages = list(messages)


class _ItemError(Exception):
    """One operation failed; Vault reports the message per item (batch) or as a 400 (single)."""


@dataclass
class _Key:
    name: str
    type: str
    derived: bool
    versions: dict[int, tuple[bytes, int]] = field(default_factory=dict, repr=False)
    min_decryption_version: int = 1
    min_encryption_version: int = 0
    min_available_version: int = 0
    deletion_allowed: bool = False

    @property
    def latest_version(self) -> int:
        return max(self.versions)

    def rotate(self) -> None:
        version = max(self.versions, default=0) + 1
        self.versions[version] = (os.urandom(_KEY_SIZES[self.type]), int(time.time()))

    def info(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "derived": self.derived,
            "deletion_allowed": self.deletion_allowed,
            "exportable": False,
            "allow_plaintext_backup": False,
            "keys": {str(v): created for v, (_, created) in self.versions.items()},
            "latest_version": self.latest_version,
            "min_available_version": self.min_available_version,
            "min_decryption_version": self.min_decryption_version,
            "min_encryption_version": self.min_encryption_version,
            "supports_encryption": True,
            "supports_decryption": True,
            "supports_derivation": True,
            "supports_signing": False,
            "auto_rotate_period": 0,
            "imported_key": False,
        }
        if self.derived:
            data.update(kdf="hkdf_sha256", convergent_encryption=False)
        return data

    def aead(self, version: int, context: bytes) -> AESGCM | ChaCha20Poly1305:
        material = self.versions[version][0]
        if self.derived:
            hkdf = HKDF(algorithm=SHA256(), length=len(material), salt=None, info=context)
            material = hkdf.derive(material)
        return ChaCha20Poly1305(material) if self.type == "chacha20-poly1305" else AESGCM(material)

    def encrypt(self, item: Mapping[str, Any], default_version: Any = 0) -> dict[str, Any]:
        plaintext = _decode(item.get("plaintext"))
        context = _decode(item.get("context"))
        if self.derived and not context:
            raise _ItemError(MISSING_CONTEXT)
        version = _as_int(item.get("key_version", default_version), "key_version")
        if version < 0:
            raise _ItemError("requested version for encryption is negative")
        if version == 0:
            version = self.latest_version
        if version > self.latest_version:
            raise _ItemError(
                "requested version for encryption is higher than the latest key version"
            )
        if version < self.min_encryption_version:
            raise _ItemError(
                "requested version for encryption is less than the minimum encryption key version"
            )
        nonce = os.urandom(12)
        sealed = self.aead(version, context).encrypt(nonce, plaintext, _aad(item))
        encoded = base64.b64encode(nonce + sealed).decode("ascii")
        return {"ciphertext": f"vault:v{version}:{encoded}", "key_version": version}

    def decrypt(self, item: Mapping[str, Any], *, with_aad: bool = True) -> bytes:
        # Check order follows Vault's Policy.Decrypt, so each input gets Vault's first error.
        value = item.get("ciphertext")
        if not isinstance(value, str) or not value.startswith("vault:v"):
            raise _ItemError("invalid ciphertext: no prefix")
        fields = value[len("vault:v") :].split(":", 1)
        if len(fields) != 2:
            raise _ItemError("invalid ciphertext: wrong number of fields")
        if not _GO_ATOI.fullmatch(fields[0]):
            raise _ItemError("invalid ciphertext: version number could not be decoded")
        version = int(fields[0]) or 1
        if version > self.latest_version:
            raise _ItemError("invalid ciphertext: version is too new")
        if version < self.min_decryption_version or version not in self.versions:
            raise _ItemError(TOO_OLD)
        try:
            payload = base64.b64decode(fields[1].encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error):
            raise _ItemError("invalid ciphertext: could not decode base64") from None
        context = _decode(item.get("context"))
        if self.derived and not context:
            raise _ItemError(MISSING_CONTEXT)
        if len(payload) < 12:
            raise _ItemError("invalid ciphertext length")
        aad = _aad(item) if with_aad else None
        try:
            return self.aead(version, context).decrypt(payload[:12], payload[12:], aad)
        except InvalidTag:
            raise _ItemError("cipher: message authentication failed") from None


class VaultTransitServer:
    """Serves the transit API on 127.0.0.1 (port chosen by the OS) from a background thread."""

    def __init__(self, *, mount: str = "transit", root_token: str | None = None) -> None:
        self.mount = mount
        self.root_token = root_token or "hvs." + secrets.token_urlsafe(24)
        self.sealed = False
        self.deny = False
        self.login_tokens: list[str] = []
        self._lock = threading.Lock()
        self._keys: dict[str, _Key] = {}
        # token digest -> (token, policy); None means root.
        self._tokens: dict[bytes, tuple[str, dict[str, frozenset[str]] | None]] = {}
        self._approles: list[tuple[str, str, dict[str, frozenset[str]]]] = []
        self._kubernetes: dict[str, tuple[str, dict[str, frozenset[str]]]] = {}
        self._tokens[_digest(self.root_token)] = (self.root_token, None)
        methods = ["GET", "POST", "PUT", "DELETE"]
        self._app = Starlette(routes=[Route("/v1/{path:path}", self._handle, methods=methods)])
        self._port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- test controls ------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def create_token(self, policy: Policy) -> str:
        token = "hvs." + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[_digest(token)] = (token, _policy(policy))
        return token

    def revoke_token(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(_digest(token), None)

    def add_approle(self, role_id: str, secret_id: str, policy: Policy) -> None:
        with self._lock:
            self._approles.append((role_id, secret_id, _policy(policy)))

    def add_kubernetes_role(self, role: str, jwt: str, policy: Policy) -> None:
        with self._lock:
            self._kubernetes[role] = (jwt, _policy(policy))

    def create_key(self, name: str, *, derived: bool = True, type: str = "aes256-gcm96") -> None:
        with self._lock:
            self._new_key(name, type, derived)

    def start(self) -> VaultTransitServer:
        if self._thread is not None:
            return self
        # proto=IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted sockets (else ~40 ms a call).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self._port))
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="vault-transit", daemon=True
        )
        self._thread.start()
        self._wait_until_serving()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=10)

    down = stop
    up = start

    def __enter__(self) -> VaultTransitServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + 10
        with httpx.Client(trust_env=False, timeout=1) as client:
            while True:
                try:
                    client.get(f"{self.address}/v1/sys/health")
                    return
                except httpx.TransportError:
                    if time.monotonic() > deadline or not (
                        self._thread and self._thread.is_alive()
                    ):
                        raise RuntimeError("the Vault test server did not start") from None
                time.sleep(0.005)

    # -- HTTP ---------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        path = request.path_params["path"].strip("/")
        try:
            if path == "sys/health" and request.method == "GET":
                return self._health()
            if self.sealed:
                raise _VaultError(503, "Vault is sealed")
            body = await _json_body(request)
            with self._lock:
                return self._route(request.method, path, body, request.headers)
        except _VaultError as error:
            return JSONResponse({"errors": error.messages}, status_code=error.status)

    def _health(self) -> Response:
        status = {
            "initialized": True,
            "sealed": self.sealed,
            "standby": False,
            "performance_standby": False,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": int(time.time()),
            "version": "1.99.0+railguard-test",
        }
        return JSONResponse(status, status_code=503 if self.sealed else 200)

    def _route(  # noqa: C901 - a dispatch table of Vault's documented routes
        self, method: str, path: str, body: dict[str, Any], headers: Mapping[str, str]
    ) -> Response:
        if method in ("POST", "PUT") and path == "auth/approle/login":
            return self._approle_login(body)
        if method in ("POST", "PUT") and path == "auth/kubernetes/login":
            return self._kubernetes_login(body)
        policy = self._token_policy(headers.get("x-vault-token", ""))
        prefix = self.mount + "/"
        if not path.startswith(prefix):
            raise _VaultError(404, f'no handler for route "{path}". route entry not found.')
        parts = path[len(prefix) :].split("/")
        if len(parts) < 2 or not _NAME.fullmatch(parts[1]):
            raise _VaultError(404, UNSUPPORTED_PATH)
        section, name, rest = parts[0], parts[1], parts[2:]
        key = self._keys.get(name)
        write = method in ("POST", "PUT")
        handler: Callable[[], Response]
        if section == "keys" and not rest and method == "GET":
            capability, handler = "read", partial(self._read_key, key)
        elif section == "keys" and not rest and write:
            capability = "update" if key else "create"
            handler = partial(self._create_key, name, key, body)
        elif section == "keys" and rest == ["rotate"] and write:
            capability, handler = "update", partial(self._rotate, key)
        elif section == "keys" and rest == ["config"] and write:
            capability, handler = "update", partial(self._configure, name, key, body)
        elif section == "encrypt" and not rest and write:
            capability = "update" if key else "create"
            handler = partial(self._encrypt, name, key, body)
        elif section in ("decrypt", "rewrap") and not rest and write:
            capability = "update"
            handler = partial(self._decrypt, key, body, rewrap=section == "rewrap")
        else:
            raise _VaultError(404, UNSUPPORTED_PATH)
        granted = _capabilities(policy, path)
        if capability not in granted:
            # An encrypt that would upsert without "create", but with "update": Vault says 400.
            if section == "encrypt" and key is None and "update" in granted:
                raise _VaultError(400, "encryption key not found")
            raise _VaultError(403, PERMISSION_DENIED)
        return handler()

    def _token_policy(self, token: str) -> dict[str, frozenset[str]] | None:
        entry = self._tokens.get(_digest(token))
        if self.deny or entry is None or not hmac.compare_digest(entry[0], token):
            raise _VaultError(403, PERMISSION_DENIED)
        return entry[1]

    def _login_response(
        self, policy: dict[str, frozenset[str]], metadata: dict[str, str]
    ) -> Response:
        token = "hvs." + secrets.token_urlsafe(24)
        self._tokens[_digest(token)] = (token, policy)
        self.login_tokens.append(token)
        auth = {
            "client_token": token,
            "accessor": secrets.token_urlsafe(18),
            "policies": ["default", "railguard-test"],
            "token_policies": ["default", "railguard-test"],
            "metadata": metadata,
            "lease_duration": 3600,
            "renewable": True,
            "entity_id": str(uuid.uuid4()),
            "token_type": "service",
            "orphan": True,
        }
        return _envelope(None, auth=auth)

    def _approle_login(self, body: dict[str, Any]) -> Response:
        role_id, secret_id = body.get("role_id"), body.get("secret_id")
        if not isinstance(role_id, str) or not role_id:
            raise _VaultError(400, "missing role_id")
        for known_role, known_secret, policy in self._approles:
            # Evaluate both comparisons every time: no early exit on the role id.
            role_ok = hmac.compare_digest(known_role.encode(), role_id.encode())
            secret_ok = hmac.compare_digest(known_secret.encode(), str(secret_id or "").encode())
            if role_ok and secret_ok:
                return self._login_response(policy, {"role_name": "railguard"})
        raise _VaultError(400, "invalid role or secret ID")

    def _kubernetes_login(self, body: dict[str, Any]) -> Response:
        role, jwt = body.get("role"), body.get("jwt")
        if not isinstance(role, str) or not role:
            raise _VaultError(400, "missing role")
        if not isinstance(jwt, str) or not jwt:
            raise _VaultError(400, "missing jwt")
        if role not in self._kubernetes:
            raise _VaultError(400, f'invalid role name "{role}"')
        expected, policy = self._kubernetes[role]
        if not hmac.compare_digest(expected.encode(), jwt.encode()):
            raise _VaultError(403, PERMISSION_DENIED)
        return self._login_response(policy, {"role": role, "service_account_name": "railguard"})

    # -- transit ------------------------------------------------------------------------------

    def _new_key(self, name: str, type: str, derived: bool) -> _Key:
        if type not in _KEY_SIZES:
            raise _VaultError(400, f"unknown key type {type}")
        key = _Key(name=name, type=type, derived=derived)
        key.rotate()
        self._keys[name] = key
        return key

    def _read_key(self, key: _Key | None) -> Response:
        if key is None:
            raise _VaultError(404)
        return _envelope(key.info())

    def _create_key(self, name: str, key: _Key | None, body: dict[str, Any]) -> Response:
        derived = _as_bool(body.get("derived", False), "derived")
        if _as_bool(body.get("convergent_encryption", False), "convergent_encryption"):
            if not derived:
                raise _VaultError(400, "convergent encryption requires derivation to be enabled")
            raise _VaultError(400, "convergent encryption is not emulated by this test server")
        if key is not None:
            return _envelope(key.info(), warnings=[f"key {name} already existed"])
        key_type = str(body.get("type") or "aes256-gcm96")
        return _envelope(self._new_key(name, key_type, derived).info())

    def _rotate(self, key: _Key | None) -> Response:
        if key is None:
            raise _VaultError(400, "key not found")
        key.rotate()
        return _envelope(key.info())

    def _configure(self, name: str, key: _Key | None, body: dict[str, Any]) -> Response:
        if key is None:
            raise _VaultError(400, f"no existing key named {name} could be found")
        warnings: list[str] = []
        decryption, encryption = key.min_decryption_version, key.min_encryption_version
        if "min_decryption_version" in body:
            decryption = _as_int(body["min_decryption_version"], "min_decryption_version", 400)
            if decryption < 0:
                raise _VaultError(400, "min decryption version cannot be negative")
            if decryption == 0:
                decryption = 1
                warnings.append(
                    "since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1"
                )
            if decryption > key.latest_version:
                raise _VaultError(
                    400,
                    f"cannot set min decryption version of {decryption}, "
                    f"latest key version is {key.latest_version}",
                )
            if decryption < key.min_available_version:
                raise _VaultError(
                    400, "min decryption version should not be less then min available version"
                )
        if "min_encryption_version" in body:
            encryption = _as_int(body["min_encryption_version"], "min_encryption_version", 400)
            if encryption < 0:
                raise _VaultError(400, "min encryption version cannot be negative")
            if encryption > key.latest_version:
                raise _VaultError(
                    400,
                    f"cannot set min encryption version of {encryption}, "
                    f"latest key version is {key.latest_version}",
                )
        if encryption != 0 and encryption < decryption:
            raise _VaultError(
                400,
                "cannot set min encryption/decryption values; min encryption version of "
                f"{encryption} must be greater than or equal to min decryption version of "
                f"{decryption}",
            )
        if "deletion_allowed" in body:
            key.deletion_allowed = _as_bool(body["deletion_allowed"], "deletion_allowed")
        key.min_decryption_version, key.min_encryption_version = decryption, encryption
        return _envelope(key.info(), warnings=warnings or None)

    def _encrypt(self, name: str, key: _Key | None, body: dict[str, Any]) -> Response:
        batch = _batch_input(body)
        items = batch if batch is not None else [body]
        if batch is None and body.get("plaintext") is None:
            raise _VaultError(400, "missing plaintext to encrypt")
        if batch is not None:
            _same_context_presence(batch)
        if key is None:
            # Reached only with the "create" capability: Vault upserts the key.
            derived = bool(items and items[0].get("context"))
            key = self._new_key(name, str(body.get("type") or "aes256-gcm96"), derived)
        default_version = body.get("key_version", 0)
        results = [_outcome(partial(key.encrypt, item, default_version)) for item in items]
        return _results(results, batch is not None, body, always_ok=False)

    def _decrypt(self, key: _Key | None, body: dict[str, Any], *, rewrap: bool) -> Response:
        batch = _batch_input(body)
        if batch is None and body.get("ciphertext") is None:
            raise _VaultError(400, f"missing ciphertext to {'rewrap' if rewrap else 'decrypt'}")
        if key is None:
            raise _VaultError(400, "encryption key not found")
        if batch is not None and not rewrap:
            _same_context_presence(batch)
        items = batch if batch is not None else [body]
        version = body.get("key_version", 0)

        def one(item: Mapping[str, Any]) -> dict[str, Any]:
            assert key is not None
            if rewrap:
                # Rewrap never takes associated_data: Vault neither declares nor forwards it.
                plaintext = key.decrypt(item, with_aad=False)
                encoded = base64.b64encode(plaintext).decode("ascii")
                return key.encrypt({**item, "plaintext": encoded}, version)
            return {"plaintext": base64.b64encode(key.decrypt(item)).decode("ascii")}

        results = [_outcome(partial(one, item)) for item in items]
        return _results(results, batch is not None, body, always_ok=rewrap, plaintext=not rewrap)


@contextmanager
def running_vault_transit_server(*, mount: str = "transit") -> Iterator[VaultTransitServer]:
    """Start a server for the duration of a ``with`` block (``.address``, ``.root_token``)."""
    with VaultTransitServer(mount=mount) as server:
        yield server


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _policy(policy: Policy) -> dict[str, frozenset[str]]:
    return {path: frozenset(caps) for path, caps in policy.items()}


def _capabilities(policy: dict[str, frozenset[str]] | None, path: str) -> frozenset[str]:
    """Vault's ACL lookup: an exact path wins, else the longest matching ``*`` prefix."""
    if policy is None:
        return frozenset({"create", "read", "update", "delete", "list", "sudo"})
    granted = policy.get(path)
    if granted is None:
        globs = [p for p in policy if p.endswith("*") and path.startswith(p[:-1])]
        granted = policy[max(globs, key=len)] if globs else frozenset()
    return frozenset() if "deny" in granted else granted


async def _json_body(request: Request) -> dict[str, Any]:
    if request.method not in ("POST", "PUT"):
        return {}
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise _VaultError(400, f"failed to parse JSON input: {error}") from None
    if not isinstance(body, dict):
        raise _VaultError(400, "failed to parse JSON input: expected an object")
    return body


def _envelope(
    data: dict[str, Any] | None,
    *,
    warnings: list[str] | None = None,
    auth: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    return JSONResponse(
        {
            "request_id": str(uuid.uuid4()),
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": data,
            "wrap_info": None,
            "warnings": warnings,
            "auth": auth,
            "mount_type": "transit" if auth is None else "",
        },
        status_code=status,
    )


def _decode(value: Any) -> bytes:
    """Standard base64 as Go decodes it, with Go's error text."""
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise _ItemError("illegal base64 data at input byte 0")
    for index, char in enumerate(value):
        if char not in _B64_ALPHABET:
            raise _ItemError(f"illegal base64 data at input byte {index}")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise _ItemError(f"illegal base64 data at input byte {len(value) // 4 * 4}") from None


def _aad(item: Mapping[str, Any]) -> bytes | None:
    return _decode(item.get("associated_data")) or None


def _as_int(value: Any, name: str, status: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        message = f"error converting input {value} for field {name!r}"
        raise _VaultError(status, message) if status else _ItemError(message)
    try:
        return int(value)
    except ValueError:
        message = f"error converting input {value} for field {name!r}"
        raise (_VaultError(status, message) if status else _ItemError(message)) from None


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise _VaultError(400, f"error converting input {value} for field {name!r}")


def _batch_input(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    batch = body.get("batch_input")
    if batch is None:
        return None
    if not isinstance(batch, list) or not batch or not all(isinstance(i, dict) for i in batch):
        raise _VaultError(400, "missing batch input to process")
    return batch


def _same_context_presence(batch: list[dict[str, Any]]) -> None:
    with_context = sum(1 for item in batch if item.get("context"))
    if 0 < with_context < len(batch):
        raise _VaultError(400, "context should be set either in all the request blocks or in none")


def _outcome(run: Callable[[], dict[str, Any]]) -> dict[str, Any] | str:
    try:
        return run()
    except _ItemError as error:
        return str(error)


def _results(
    results: list[dict[str, Any] | str],
    batch: bool,
    body: dict[str, Any],
    *,
    always_ok: bool,
    plaintext: bool = False,
) -> Response:
    """Vault's reply shapes: a single failure is a 400; batch failures stay per item."""
    if not batch:
        only = results[0]
        if isinstance(only, str):
            raise _VaultError(400, only)
        return _envelope(only)
    references = [item.get("reference", "") for item in (body.get("batch_input") or [])]
    items: list[dict[str, Any]] = []
    for result, reference in zip(results, references, strict=True):
        if isinstance(result, str):
            failed: dict[str, Any] = {"error": result, "reference": reference}
            items.append({"plaintext": "", **failed} if plaintext else failed)
        else:
            items.append({**result, "reference": reference})
    failures = sum(isinstance(r, str) for r in results)
    status = 200
    if failures and not always_ok:
        status = 400
        code = body.get("partial_failure_response_code")
        if isinstance(code, int) and 1 <= code <= 599 and failures < len(results):
            status = code
    return _envelope({"batch_results": items}, status=status)
