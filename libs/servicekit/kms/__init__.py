"""Key management: one ``KeyManager`` interface, a Vault transit backend and a local keyring.

Both backends use derived keys bound to a per-record context and emit Vault's
``vault:v<N>:<base64>`` ciphertexts; see docs/key-management.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# resolved lazily (PEP 562): the Vault backend pulls in hvac and requests (~19 MB resident),
# which a process on the local keyring never needs
_EXPORTS: dict[str, str] = {
    "AppRoleAuth": "servicekit.kms.vault_transit",
    "Ciphertext": "servicekit.kms.ciphertext",
    "KMS_BATCH_TOO_LARGE": "servicekit.kms.errors",
    "KMS_CIPHERTEXT_INVALID": "servicekit.kms.errors",
    "KMS_CONFIG_INVALID": "servicekit.kms.errors",
    "KMS_CONTEXT_INVALID": "servicekit.kms.errors",
    "KMS_CONTEXT_MISMATCH": "servicekit.kms.errors",
    "KMS_KEYRING_CORRUPT": "servicekit.kms.errors",
    "KMS_KEYRING_INSECURE": "servicekit.kms.errors",
    "KMS_KEY_NOT_DERIVED": "servicekit.kms.errors",
    "KMS_KEY_NOT_FOUND": "servicekit.kms.errors",
    "KMS_KEY_TYPE_UNSUPPORTED": "servicekit.kms.errors",
    "KMS_KEY_VERSION_INVALID": "servicekit.kms.errors",
    "KMS_KEY_VERSION_RETIRED": "servicekit.kms.errors",
    "KMS_MASTER_KEY_INVALID": "servicekit.kms.errors",
    "KMS_MASTER_KEY_MISMATCH": "servicekit.kms.errors",
    "KMS_PERMISSION_DENIED": "servicekit.kms.errors",
    "KMS_PLAINTEXT_TOO_LARGE": "servicekit.kms.errors",
    "KMS_REQUEST_REJECTED": "servicekit.kms.errors",
    "KMS_UNAVAILABLE": "servicekit.kms.errors",
    "KeyInfo": "servicekit.kms.key_manager",
    "KeyManager": "servicekit.kms.key_manager",
    "KubernetesAuth": "servicekit.kms.vault_transit",
    "LocalKeyring": "servicekit.kms.local_keyring",
    "MAX_BATCH_ITEMS": "servicekit.kms.key_manager",
    "MAX_CONTEXT_BYTES": "servicekit.kms.key_manager",
    "MAX_PLAINTEXT_BYTES": "servicekit.kms.key_manager",
    "MasterKey": "servicekit.kms.local_keyring",
    "TokenAuth": "servicekit.kms.vault_transit",
    "VaultAuth": "servicekit.kms.vault_transit",
    "VaultTransit": "servicekit.kms.vault_transit",
    "VaultTransitConfig": "servicekit.kms.vault_transit",
    "key_manager_from_url": "servicekit.kms.url",
    "parse_ciphertext": "servicekit.kms.ciphertext",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'servicekit.kms' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from servicekit.kms.ciphertext import Ciphertext, parse_ciphertext
    from servicekit.kms.errors import (
        KMS_BATCH_TOO_LARGE,
        KMS_CIPHERTEXT_INVALID,
        KMS_CONFIG_INVALID,
        KMS_CONTEXT_INVALID,
        KMS_CONTEXT_MISMATCH,
        KMS_KEY_NOT_DERIVED,
        KMS_KEY_NOT_FOUND,
        KMS_KEY_TYPE_UNSUPPORTED,
        KMS_KEY_VERSION_INVALID,
        KMS_KEY_VERSION_RETIRED,
        KMS_KEYRING_CORRUPT,
        KMS_KEYRING_INSECURE,
        KMS_MASTER_KEY_INVALID,
        KMS_MASTER_KEY_MISMATCH,
        KMS_PERMISSION_DENIED,
        KMS_PLAINTEXT_TOO_LARGE,
        KMS_REQUEST_REJECTED,
        KMS_UNAVAILABLE,
    )
    from servicekit.kms.key_manager import (
        MAX_BATCH_ITEMS,
        MAX_CONTEXT_BYTES,
        MAX_PLAINTEXT_BYTES,
        KeyInfo,
        KeyManager,
    )
    from servicekit.kms.local_keyring import LocalKeyring, MasterKey
    from servicekit.kms.url import key_manager_from_url
    from servicekit.kms.vault_transit import (
        AppRoleAuth,
        KubernetesAuth,
        TokenAuth,
        VaultAuth,
        VaultTransit,
        VaultTransitConfig,
    )

__all__ = [
    "KMS_BATCH_TOO_LARGE",
    "KMS_CIPHERTEXT_INVALID",
    "KMS_CONFIG_INVALID",
    "KMS_CONTEXT_INVALID",
    "KMS_CONTEXT_MISMATCH",
    "KMS_KEYRING_CORRUPT",
    "KMS_KEYRING_INSECURE",
    "KMS_KEY_NOT_DERIVED",
    "KMS_KEY_NOT_FOUND",
    "KMS_KEY_TYPE_UNSUPPORTED",
    "KMS_KEY_VERSION_INVALID",
    "KMS_KEY_VERSION_RETIRED",
    "KMS_MASTER_KEY_INVALID",
    "KMS_MASTER_KEY_MISMATCH",
    "KMS_PERMISSION_DENIED",
    "KMS_PLAINTEXT_TOO_LARGE",
    "KMS_REQUEST_REJECTED",
    "KMS_UNAVAILABLE",
    "MAX_BATCH_ITEMS",
    "MAX_CONTEXT_BYTES",
    "MAX_PLAINTEXT_BYTES",
    "AppRoleAuth",
    "Ciphertext",
    "KeyInfo",
    "KeyManager",
    "KubernetesAuth",
    "LocalKeyring",
    "MasterKey",
    "TokenAuth",
    "VaultAuth",
    "VaultTransit",
    "VaultTransitConfig",
    "key_manager_from_url",
    "parse_ciphertext",
]
