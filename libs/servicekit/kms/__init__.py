"""Key management: one ``KeyManager`` interface, a Vault transit backend and a local keyring.

Both backends use derived keys bound to a per-record context and emit Vault's
``vault:v<N>:<base64>`` ciphertexts; see docs/key-management.md.
"""

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
