"""Every ``RAILGUARD_*`` setting, in one place: its name, default, meaning and who reads it.

:class:`~servicekit.settings.Settings` refuses to read a name that is not declared here, so this
list cannot fall behind the code; the README's configuration table is generated from it
(``scripts/settings_table.py``) and a unit test fails when the two differ.

``default`` is what the code uses when the variable is unset, written the way an operator would
type it ("" = unset/off). ``used_by`` names the processes that read it: ``all`` (the four gRPC
services and the edge), ``services`` (the four gRPC services) or one process name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CATALOG", "Var", "declared", "render_table", "secret_names"]


@dataclass(frozen=True, slots=True)
class Var:
    """One ``RAILGUARD_<name>`` variable."""

    name: str
    default: str
    meaning: str
    used_by: str = "all"
    secret: bool = False
    """Whether it holds a secret: it may then be given as ``RAILGUARD_<name>_FILE``."""


# one variable per line: the catalog reads as a table
# fmt: off
CATALOG: tuple[Var, ...] = (
    # --- every process -------------------------------------------------------------------------
    Var("STATE_DIR", ".state", "where embedded defaults live (SQLite files, keyrings, dev certificates, mail)"),
    Var("CERTS_DIR", "<STATE_DIR>/certs", "where the development certificates are read from"),
    Var("LISTEN", "127.0.0.1:<port>", "where this process listens (auth 50051, workspaces 50052, keys 50053, credentials 50054, edge 8443)"),
    Var("AUTH_ADDR", "127.0.0.1:50051", "where the auth service is reached"),
    Var("WORKSPACES_ADDR", "127.0.0.1:50052", "where the workspaces service is reached"),
    Var("KEYS_ADDR", "127.0.0.1:50053", "where the keys service is reached"),
    Var("CREDENTIALS_ADDR", "127.0.0.1:50054", "where the credentials service is reached"),
    Var("TLS_CERT", "<CERTS_DIR>/<service>.crt", "this process's certificate (the edge: its HTTPS certificate)"),
    Var("TLS_KEY", "<CERTS_DIR>/<service>.key", "this process's private key"),
    Var("TLS_CA", "<CERTS_DIR>/ca.crt", "the internal CA that signs the services' mTLS certificates"),
    Var("TRUST_DOMAIN", "railguard.local", "the SPIFFE trust domain of the services' certificates"),
    Var("LOG_LEVEL", "INFO", "the level of the JSON log lines"),
    Var("GRACE_SECONDS", "5", "how long a stopping process lets calls in flight finish"),
    Var("ISSUER", "https://railguard.local", "the access tokens' `iss`"),
    Var("AUDIENCE", "railguard", "the access tokens' `aud`"),
    Var("REDIS_URL", "", "Redis for shared rate limits and the API-key revocation fan-out; optional (an accelerator: without it limits are per edge process)", secret=True),
    Var("METRICS_LISTEN", "", "a plaintext port serving Prometheus `/metrics`"),
    # --- the gRPC services ---------------------------------------------------------------------
    Var("DATABASE_URL", "sqlite+aiosqlite:///<STATE_DIR>/<service>.db", "the service's database (`RAILGUARD_<SERVICE>_DATABASE_URL` overrides it per service), e.g. `postgresql+asyncpg://user@host/auth`", "services", secret=True),
    Var("KMS_URL", "", "`vault://…` (Vault transit) or `local:///…` (keyring); unset: a local keyring in STATE_DIR; see docs/key-management.md", "services", secret=True),
    Var("HEALTH_LISTEN", "", "a plaintext port serving only gRPC health, for kubelet probes", "services"),
    Var("MAX_CONNECTION_AGE_SECONDS", "300", "a client connection is asked to reconnect after this long (spreads load over new replicas)", "services"),
    Var("DB_POOL_SIZE", "32", "PostgreSQL connections a service process keeps open (no churn with the benchmark's 32 requests in flight); keep services × replicas × (pool + overflow) within the server's `max_connections`", "services"),
    Var("DB_MAX_OVERFLOW", "8", "connections a service process may open beyond the pool for a burst (closed when returned)", "services"),
    Var("MIGRATE_ON_START", "1", "`1` migrates before serving; `0` when a migrate Job does it", "services"),
    Var("AUDIT_RELAY_INTERVAL", "1", "seconds between audit-outbox relay passes (a commit wakes it at once)", "services"),
    Var("PUBLIC_URL", "https://127.0.0.1:8443", "the web address links in mails point at", "auth, workspaces"),
    Var("SMTP_URL", "", "`smtp://user@host:587`: mail over SMTP with STARTTLS required; unset: `.eml` files in `<STATE_DIR>/mail/`", "auth, workspaces"),
    Var("SMTP_PASSWORD", "", "the SMTP password, when it is not in the URL", "auth, workspaces", secret=True),
    Var("SMTP_CA_FILE", "", "a CA bundle for the SMTP server's certificate", "auth, workspaces"),
    Var("MAIL_FROM", "Railguard <no-reply@railguard.local>", "the sender of every mail", "auth, workspaces"),
    Var("MAIL_RELAY_INTERVAL", "1", "seconds between mail-outbox relay passes", "auth, workspaces"),
    # --- auth ----------------------------------------------------------------------------------
    Var("AUTH_ACCESS_TOKEN_TTL_SECONDS", "600", "access-token lifetime (give the edge the same value: it keeps pushed session revocations that long)", "auth, edge"),
    Var("AUTH_REFRESH_IDLE_SECONDS", "1209600", "a refresh token unused this long expires (14 d)", "auth"),
    Var("AUTH_REFRESH_ABSOLUTE_SECONDS", "2592000", "a session ends this long after login whatever its use (30 d)", "auth"),
    Var("AUTH_REFRESH_GRACE_SECONDS", "10", "a just-rotated refresh token answered again (lost response) within this window", "auth"),
    Var("AUTH_KEY_ROTATION_SECONDS", "2592000", "signing-key rotation interval (30 d)", "auth"),
    Var("AUTH_JWKS_CACHE_SECONDS", "600", "how long verifiers may cache the JWKS", "auth"),
    Var("AUTH_MAINTENANCE_SECONDS", "60", "seconds between auth's maintenance passes (key rotation, expiry sweeps)", "auth"),
    Var("AUTH_ARGON2_MEMORY_KIB", "19456", "argon2id memory cost (raised to this floor)", "auth"),
    Var("AUTH_ARGON2_TIME_COST", "2", "argon2id iterations (raised to this floor)", "auth"),
    Var("AUTH_ARGON2_PARALLELISM", "1", "argon2id lanes", "auth"),
    Var("AUTH_HASH_CONCURRENCY", "<CPU count>", "password hashes computed at once", "auth"),
    Var("AUTH_TOTP_ISSUER", "Railguard", "the issuer shown by authenticator apps", "auth"),
    Var("AUTH_DEPLOYMENT_AUDIENCE", "railguard-agent-ui", "the `aud` of Agent UI deployment tokens", "auth"),
    Var("AUTH_DEPLOYMENT_TOKEN_TTL_SECONDS", "900", "deployment-token lifetime", "auth"),
    Var("AUTH_STEP_UP_MAX_AGE_SECONDS", "900", "how recent an MFA proof a sensitive action needs (at most 900)", "auth"),
    Var("AUTH_LOGIN_IP_FREE_FAILURES", "20", "failed logins per client IP per hour before it is slowed", "auth"),
    Var("AUTH_LOGIN_IP_HOURLY_CAP", "300", "login attempts per client IP per hour", "auth"),
    Var("AUTH_LOGIN_ACCOUNT_HOURLY_CAP", "100", "failed logins per account per hour (at most 100)", "auth"),
    Var("AUTH_ACCOUNT_RETENTION_DAYS", "30", "days a deleted account's personal data is kept (a tombstone stays)", "auth"),
    Var("AUTH_SIGNING_KEK", "", "only opens signing keys sealed before the KeyManager move", "auth", secret=True),
    Var("SIGNUP_POLICY", "open", "`open`, `invite-only`, or `domains:example.com,…`", "auth"),
    # --- workspaces ----------------------------------------------------------------------------
    Var("LIFECYCLE_RELAY_MAX_BACKOFF", "5", "the longest wait between tries to deliver workspace-lifecycle events to a receiver that is down", "workspaces"),
    # --- keys ----------------------------------------------------------------------------------
    Var("KEYS_PEPPERS", "", "the API-key pepper ring (`v1:<base64>,…`); required with a shared database (a generated 0600 file on SQLite)", "keys", secret=True),
    Var("KEYS_RETENTION_DAYS", "30", "days a deleted key is restorable before its digest is destroyed", "keys"),
    Var("KEYS_WORKSPACE_CACHE_SECONDS", "1", "workspace-status cache (capped at 1 s)", "keys"),
    Var("KEYS_LAST_USED_FLUSH_SECONDS", "5", "how often last-used times are written", "keys"),
    Var("KEYS_VERIFY_CACHE_ENTRIES", "4096", "stored keys VerifyApiKey keeps while the keys change feed is live (0: off)", "keys"),
    # --- credentials ---------------------------------------------------------------------------
    Var("CREDENTIALS_WEBHOOK_PEPPER", "", "the webhook-token keyed-hash secret; required with a shared database (a generated 0600 file on SQLite)", "credentials", secret=True),
    Var("CREDENTIALS_RETENTION_DAYS", "30", "days a deleted credential is restorable before its ciphertext is destroyed", "credentials"),
    # --- edge ----------------------------------------------------------------------------------
    Var("EDGE_TRUSTED_PROXIES", "", "CIDRs whose `X-Forwarded-For` the edge believes; empty = none", "edge"),
    Var("EDGE_IPV6_PREFIX", "64", "the IPv6 network size per-IP limits count", "edge"),
    Var("EDGE_MAX_HEADER_BYTES", "16384", "request line + headers beyond this are `431`", "edge"),
    Var("EDGE_MAX_BODY_BYTES", "65536", "request bodies beyond this are `413`", "edge"),
    Var("EDGE_RATE_LIMIT_SCALE", "1", "multiplies every rate limit (tests and load runs)", "edge"),
    Var("EDGE_KEY_CACHE_SECONDS", "0.5", "how long a verified API key is cached; above 0.5 only while the revocation fan-out is up", "edge"),
    Var("EDGE_WORKERS", "<CPUs the process may run on>", "edge processes serving the one port (a CPU quota such as a Kubernetes limit is not seen: set it there); `1` serves in-process; each worker has its own channels, caches, feeds and per-process rate limits", "edge"),
    Var("EDGE_WORKER_FD", "", "internal: the listening socket the edge supervisor hands to a worker (never set it yourself)", "edge"),
    Var("EDGE_CHANGE_FEEDS", "on", "`off`: no change feeds; every request asks the owning services (as before the feeds)", "edge"),
    Var("EDGE_ACCESS_CACHE_ENTRIES", "100000", "bound of the access cache fed by the workspaces feed (LRU)", "edge"),
    Var("EDGE_KEY_FEED_CACHE_SECONDS", "60", "how long a verified API key may stay cached while the keys feed is live (never past its expiry)", "edge"),
    Var("EDGE_AUDIT_STREAM_RECHECK_SECONDS", "5", "how often an open audit stream's access is decided again", "edge"),
    Var("EDGE_MAX_AUDIT_STREAMS", "1000", "open audit streams per edge process", "edge"),
)
# fmt: on

_BY_NAME = {v.name: v for v in CATALOG}
_PER_SERVICE_DATABASE = re.compile(
    r"^[A-Z][A-Z0-9]*_DATABASE_URL$"
)  # RAILGUARD_<SERVICE>_DATABASE_URL


def declared(name: str) -> bool:
    """Whether ``RAILGUARD_<name>`` is a setting of this catalog."""
    return name in _BY_NAME or bool(_PER_SERVICE_DATABASE.match(name))


def secret_names() -> tuple[str, ...]:
    """The settings that hold secrets (each may come from a ``_FILE``)."""
    return tuple(v.name for v in CATALOG if v.secret)


def render_table() -> str:
    """The README's configuration table (Markdown), one row per variable."""
    rows = ["| variable | default | read by | meaning |", "|---|---|---|---|"]
    for v in CATALOG:
        default = f"`{v.default}`" if v.default else "unset"
        secret = " (may be a `_FILE`)" if v.secret else ""
        rows.append(f"| `RAILGUARD_{v.name}` | {default} | {v.used_by} | {v.meaning}{secret} |")
    return "\n".join(rows) + "\n"
