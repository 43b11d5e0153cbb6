"""Typed, frozen settings read once from ``RAILGUARD_*`` environment variables.

Each composition root calls :func:`load_settings` once and passes the object down; no other
module reads the environment.

Every secret setting (:data:`SECRET_SETTINGS`) can instead be given as a file:
``RAILGUARD_<NAME>_FILE=/path`` reads the value from that file (trailing newline stripped), the
way Kubernetes projects a Secret into a volume, so no secret sits in the process environment.
Setting both the variable and its ``_FILE`` is refused; so is a ``_FILE`` that cannot be read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from servicekit.catalog import declared, secret_names

__all__ = ["SECRET_SETTINGS", "PeerAddresses", "Settings", "load_settings"]

_PREFIX = "RAILGUARD_"

# The settings that hold secrets (plus every <SERVICE>_DATABASE_URL); each may come from a file.
SECRET_SETTINGS = secret_names()


def _with_secret_files(env: Mapping[str, str]) -> Mapping[str, str]:
    """``env`` with each ``RAILGUARD_<SECRET>_FILE`` replaced by the file's content."""
    names = set(SECRET_SETTINGS) | {
        k[len(_PREFIX) : -len("_FILE")]
        for k in env
        if k.startswith(_PREFIX) and k.endswith("_DATABASE_URL_FILE")
    }
    resolved = dict(env)
    for name in sorted(names):
        path = env.get(f"{_PREFIX}{name}_FILE")
        if not path:
            continue
        if env.get(_PREFIX + name):
            raise ValueError(f"set {_PREFIX}{name} or {_PREFIX}{name}_FILE, not both")
        try:
            value = Path(path).read_text().rstrip("\r\n")
        except OSError as exc:  # the path only, never the content
            raise ValueError(f"{_PREFIX}{name}_FILE: cannot read {path}: {exc.strerror}") from None
        if not value:
            raise ValueError(f"{_PREFIX}{name}_FILE: {path} is empty")
        resolved[_PREFIX + name] = value
    return resolved


@dataclass(frozen=True, slots=True)
class PeerAddresses:
    """Where the internal gRPC services listen (``host:port``)."""

    auth: str = "127.0.0.1:50051"
    workspaces: str = "127.0.0.1:50052"
    keys: str = "127.0.0.1:50053"
    credentials: str = "127.0.0.1:50054"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a Railguard process is configured with."""

    service_name: str
    listen: str
    database_url: str
    tls_cert: Path
    tls_key: Path
    tls_ca: Path
    state_dir: Path
    peers: PeerAddresses = field(default_factory=PeerAddresses)
    redis_url: str = ""
    kms_url: str = ""
    log_level: str = "INFO"
    grace_seconds: float = 5.0
    issuer: str = "https://railguard.local"
    audience: str = "railguard"
    otel_endpoint: str = ""  # OTEL_EXPORTER_OTLP_ENDPOINT: traces are exported there when set
    extra: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        """A service-specific setting (``RAILGUARD_<NAME>``), read at load time.

        Only a name declared in :mod:`servicekit.catalog` may be read: an undeclared one is a
        programming error (``KeyError``), so the catalog and the README table stay complete.
        """
        key = name.upper()
        if not declared(key):
            raise KeyError(f"RAILGUARD_{key} is not declared in servicekit.catalog")
        return self.extra.get(key, default)

    def get_int(self, name: str, default: int, *, minimum: int | None = None) -> int:
        """A service-specific whole number (``RAILGUARD_<NAME>``), at least ``minimum``."""
        raw = self.get(name)
        value = int(raw) if raw else default
        if minimum is not None and value < minimum:
            raise ValueError(f"RAILGUARD_{name.upper()} must be at least {minimum}")
        return value

    def get_float(self, name: str, default: float) -> float:
        """A service-specific number (``RAILGUARD_<NAME>``), ``default`` when unset."""
        raw = self.get(name)
        return float(raw) if raw else default


_DEFAULT_PORTS = {
    "auth": 50051,
    "workspaces": 50052,
    "keys": 50053,
    "credentials": 50054,
    "edge": 8443,
}


def load_settings(service_name: str, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings of ``service_name`` from the environment (or the mapping given)."""
    env = _with_secret_files(os.environ if environ is None else environ)

    def get(name: str, default: str = "") -> str:
        if not declared(name):
            raise KeyError(f"{_PREFIX}{name} is not declared in servicekit.catalog")
        return env.get(_PREFIX + name, default)

    state_dir = Path(get("STATE_DIR", ".state")).resolve()
    certs = Path(get("CERTS_DIR", str(state_dir / "certs")))
    port = _DEFAULT_PORTS.get(service_name, 50050)
    db_default = f"sqlite+aiosqlite:///{state_dir / (service_name + '.db')}"
    db_url = get(f"{service_name.upper()}_DATABASE_URL") or get("DATABASE_URL") or db_default
    extra = {k[len(_PREFIX) :]: v for k, v in env.items() if k.startswith(_PREFIX)}
    defaults = PeerAddresses()
    return Settings(
        service_name=service_name,
        listen=get("LISTEN", f"127.0.0.1:{port}"),
        database_url=db_url,
        tls_cert=Path(get("TLS_CERT", str(certs / f"{service_name}.crt"))),
        tls_key=Path(get("TLS_KEY", str(certs / f"{service_name}.key"))),
        tls_ca=Path(get("TLS_CA", str(certs / "ca.crt"))),
        state_dir=state_dir,
        peers=PeerAddresses(
            auth=get("AUTH_ADDR", defaults.auth),
            workspaces=get("WORKSPACES_ADDR", defaults.workspaces),
            keys=get("KEYS_ADDR", defaults.keys),
            credentials=get("CREDENTIALS_ADDR", defaults.credentials),
        ),
        redis_url=get("REDIS_URL"),
        kms_url=get("KMS_URL"),
        log_level=get("LOG_LEVEL", "INFO"),
        grace_seconds=float(get("GRACE_SECONDS", "5")),
        issuer=get("ISSUER", "https://railguard.local"),
        audience=get("AUDIENCE", "railguard"),
        otel_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
        extra=extra,
    )
