"""Key management: one ``KeyManager`` interface, a Vault transit backend and a local keyring.

Both backends use derived keys bound to a per-record context and emit Vault's
``vault:v<N>:<base64>`` ciphertexts; see docs/key-management.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from servicekit.exports import lazy_getattr

# the stable reasons are plain strings, cheap to import: re-exported as errors.py lists them
from servicekit.kms import errors as _errors
from servicekit.kms.errors import *  # noqa: F403

# resolved lazily (PEP 562): the Vault backend pulls in hvac and requests (~19 MB resident),
# which a process on the local keyring never needs
_EXPORTS: dict[str, str] = {
    "AppRoleAuth": "servicekit.kms.vault_transit",
    "Ciphertext": "servicekit.kms.ciphertext",
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


__getattr__ = lazy_getattr("servicekit.kms", _EXPORTS, globals())


if TYPE_CHECKING:
    from servicekit.kms.ciphertext import Ciphertext, parse_ciphertext
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
__all__ += _errors.__all__
