"""The ports of the credentials use cases: what they need from storage, the key manager and the
workspace gate, as Protocols. ``adapters/`` implements them over SQL and ``servicekit.kms``; the
unit tests implement them in memory (``tests/unit/credentials/fakes.py``).

Names: a port is named for what it is (``CredentialRepository``); its SQL implementation carries
the ``Sql`` prefix (``SqlCredentialRepository``), so a reader always knows which one a line means.
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Sequence
from typing import Protocol, TypeVar

from servicekit.kms import KeyInfo
from servicekit.ports import AuditedUnitOfWork

from credentials_service.domain import Credential, Delivery, WebhookTrigger

__all__ = [
    "CredentialRepository",
    "CredentialsUnitOfWork",
    "DeliveryRepository",
    "DuplicateRequest",
    "Gate",
    "ResourceRepository",
    "SealingKeyManager",
    "WebhookTriggerRepository",
]

R = TypeVar("R")


class DuplicateRequest(Exception):
    """Another transaction stored the same (workspace, creator, request_id) first."""


class ResourceRepository(Protocol[R]):
    """What credentials and webhook triggers share: a workspace-scoped, soft-deletable record
    holding one ciphertext, created idempotently by ``request_id``."""

    async def get(self, workspace_id: str, item_id: str, *, lock: bool = False) -> R | None: ...
    async def by_request_id(self, workspace_id: str, user_id: str, request_id: str) -> R | None: ...
    async def add(self, item: R, request_id: str | None) -> None:
        """Store a new record; raise :class:`DuplicateRequest` when ``request_id`` is taken."""
        ...

    async def save(self, item: R) -> None: ...
    async def page(
        self, workspace_id: str, after: str, limit: int, *, show_deleted: bool
    ) -> builtins.list[R]:
        """In id order after ``after``; live ones only, or with the deleted (never tombstones)."""
        ...

    async def stale(self, below_version: int, after: str, limit: int) -> builtins.list[R]:
        """Records sealed under a key version older than ``below_version``, in id order."""
        ...

    async def count_stale(self, below_version: int) -> int: ...
    async def replace_ciphertext(self, item_id: str, old: str, new: str, version: int) -> bool:
        """Swap a rewrapped ciphertext in unless the value changed meanwhile (optimistic)."""
        ...


class CredentialRepository(ResourceRepository[Credential], Protocol):
    async def purge_due(
        self, now: dt.datetime, after: str, limit: int
    ) -> builtins.list[Credential]:
        """Deleted credentials whose ``purge_at`` has passed and that still hold a secret."""
        ...


class WebhookTriggerRepository(ResourceRepository[WebhookTrigger], Protocol):
    async def by_token_hash(self, digest: bytes) -> WebhookTrigger | None: ...
    async def deleted_unpurged(
        self, deleted_before: dt.datetime, after: str, limit: int
    ) -> builtins.list[WebhookTrigger]:
        """Triggers deleted at or before ``deleted_before`` and not purged yet, in id order."""
        ...


class DeliveryRepository(Protocol):
    async def add(self, delivery: Delivery) -> None: ...
    async def page(self, trigger_id: str, before: str, limit: int) -> list[Delivery]:
        """Newest first, strictly before the ``before`` id when one is given."""
        ...


class CredentialsUnitOfWork(AuditedUnitOfWork, Protocol):
    """One transaction over this service's records and its audit outbox; rolls back unless
    committed."""

    @property
    def credentials(self) -> CredentialRepository: ...
    @property
    def triggers(self) -> WebhookTriggerRepository: ...
    @property
    def deliveries(self) -> DeliveryRepository: ...


class Gate(Protocol):
    """Whether a workspace may still be acted in: what this service holds in its lifecycle table
    about each workspace (``servicekit.lifecycle.WorkspaceGate``)."""

    async def alive(self, workspace_id: str) -> bool: ...
    async def require_alive(self, workspace_id: str) -> None:
        """Raise FAILED_PRECONDITION ``WORKSPACE_DELETED`` (NOT_FOUND once purged)."""
        ...


class SealingKeyManager(Protocol):
    """The part of ``servicekit.kms.KeyManager`` these use cases call (both backends have it)."""

    async def encrypt(self, plaintext: bytes, context: str) -> str: ...
    async def decrypt(self, ciphertext: str, context: str) -> bytes: ...
    async def rewrap(self, ciphertext: str, context: str) -> str: ...
    async def rewrap_batch(self, items: Sequence[tuple[str, str]]) -> list[str]: ...
    async def rotate(self) -> int: ...
    async def key_info(self) -> KeyInfo: ...
    async def set_min_decryption_version(self, version: int) -> KeyInfo: ...
