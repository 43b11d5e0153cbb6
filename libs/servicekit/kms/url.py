"""Pick a backend from one settings string, so composition roots stay one line.

    local:///var/lib/railguard/keyring.json?master_key_file=/run/secrets/kms-master-key&key=credentials
    vault://vault.internal:8200/transit/credentials?auth=kubernetes&role=credentials-service
    vault://vault.internal:8200/transit/credentials?auth=approle&role_id=<id>&secret_id_file=/run/secrets/secret-id
    vault+http://127.0.0.1:8200/transit/credentials?auth=token&token_file=/run/secrets/vault-token

``vault://`` is HTTPS (add ``ca_file=`` for a private CA); ``vault+http://`` is for local
development only. The last path segment is the key name, the rest is the mount. Secrets never go
in the URL (URLs end up in logs): they come from files named in it, or as keyword arguments
(``master_key=``, ``vault_auth=``) that the caller read from its settings.
Other options: ``timeout`` (seconds), ``max_concurrency``, ``auth_mount``, ``jwt_file``.
Unknown options are refused, so a typo cannot silently fall back to a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from servicekit.kms import errors
from servicekit.kms.key_manager import KeyManager
from servicekit.kms.local_keyring import LocalKeyring, MasterKey

if TYPE_CHECKING:  # hvac (and requests) load only when a vault:// URL is used
    from servicekit.kms.vault_transit import (
        VaultAuth,
        VaultTransit,
    )


__all__ = ["key_manager_from_url"]

_LOCAL_OPTIONS = {"master_key_file", "key", "max_concurrency"}
_VAULT_OPTIONS = {
    "auth",
    "auth_mount",
    "ca_file",
    "jwt_file",
    "max_concurrency",
    "role",
    "role_id",
    "secret_id_file",
    "timeout",
    "token_file",
}


def key_manager_from_url(
    url: str,
    *,
    master_key: MasterKey | None = None,
    vault_auth: VaultAuth | None = None,
) -> KeyManager:
    """Build the backend a URL names; reads the secret files it names, opens no connection."""
    parts = urlsplit(url)
    options = _options(parts.query, parts.scheme)
    if parts.scheme == "local":
        return _local(parts.netloc, unquote(parts.path), options, master_key)
    if parts.scheme in ("vault", "vault+http"):
        return _vault(parts.scheme, parts.netloc, unquote(parts.path), options, vault_auth)
    raise errors.config_invalid("the scheme must be local, vault or vault+http")


def _options(query: str, scheme: str) -> dict[str, str]:
    pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
    options = dict(pairs)
    allowed = _LOCAL_OPTIONS if scheme == "local" else _VAULT_OPTIONS
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise errors.config_invalid(f"unknown option(s): {', '.join(unknown)}")
    if len(options) != len(pairs):
        raise errors.config_invalid("an option is repeated")
    return options


def _local(
    netloc: str, path: str, options: dict[str, str], master_key: MasterKey | None
) -> LocalKeyring:
    if netloc or not path.startswith("/") or path.endswith("/"):
        raise errors.config_invalid("local:// needs an absolute file path (local:///path/file)")
    key_file = options.get("master_key_file")
    if (master_key is None) == (key_file is None):
        raise errors.config_invalid("give exactly one of master_key_file= and master_key")
    if key_file is not None:
        master_key = MasterKey.from_file(key_file)
    assert master_key is not None
    return LocalKeyring(
        path,
        master_key,
        key_name=options.get("key", "railguard"),
        max_concurrency=_positive_int(options, "max_concurrency", 8),
    )


def _vault(
    scheme: str, netloc: str, path: str, options: dict[str, str], auth: VaultAuth | None
) -> VaultTransit:
    from servicekit.kms.vault_transit import VaultTransit, VaultTransitConfig

    mount, _, key_name = path.strip("/").rpartition("/")
    if not netloc or not mount or not key_name:
        raise errors.config_invalid("vault URLs look like vault://host:port/<mount>/<key>")
    if scheme == "vault+http" and "ca_file" in options:
        raise errors.config_invalid("ca_file needs TLS (vault://)")
    if (auth is None) == ("auth" not in options):
        raise errors.config_invalid("give exactly one of the auth= option and vault_auth")
    timeout = options.get("timeout", "10")
    try:
        timeout_seconds = float(timeout)
    except ValueError:
        timeout_seconds = 0.0
    if not 0 < timeout_seconds <= 300:
        raise errors.config_invalid("timeout must be between 0 and 300 seconds")
    return VaultTransit(
        VaultTransitConfig(
            address=f"{'http' if scheme == 'vault+http' else 'https'}://{netloc}",
            auth=auth or _auth_from(options),
            key_name=key_name,
            mount_point=mount,
            ca_file=options.get("ca_file"),
            timeout=timeout_seconds,
            max_concurrency=_positive_int(options, "max_concurrency", 8),
        )
    )


def _auth_from(options: dict[str, str]) -> VaultAuth:
    from servicekit.kms.vault_transit import (
        DEFAULT_KUBERNETES_JWT_PATH,
        AppRoleAuth,
        KubernetesAuth,
        TokenAuth,
    )

    method = options["auth"]
    mount = options.get("auth_mount")
    if method == "token":
        return TokenAuth(_read_secret(options, "token_file"))
    if method == "approle":
        role_id = options.get("role_id") or ""
        if not role_id:
            raise errors.config_invalid("auth=approle needs role_id=")
        secret_id = _read_secret(options, "secret_id_file")
        return AppRoleAuth(role_id, secret_id, mount_point=mount or "approle")
    if method == "kubernetes":
        role = options.get("role") or ""
        if not role:
            raise errors.config_invalid("auth=kubernetes needs role=")
        jwt_path = options.get("jwt_file", DEFAULT_KUBERNETES_JWT_PATH)
        return KubernetesAuth(role, jwt_path, mount_point=mount or "kubernetes")
    raise errors.config_invalid("auth must be token, approle or kubernetes")


def _read_secret(options: dict[str, str], name: str) -> str:
    path = options.get(name)
    if not path:
        raise errors.config_invalid(f"{name}= is required for this auth method")
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        value = ""
    if not value:
        raise errors.config_invalid(f"the file named by {name}= is unreadable or empty")
    return value


def _positive_int(options: dict[str, str], name: str, default: int) -> int:
    raw = options.get(name, str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= 256:
        raise errors.config_invalid(f"{name} must be an integer between 1 and 256")
    return int(raw)
