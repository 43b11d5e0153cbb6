"""Credentials: create (masked), read, update or replace the value, delete and restore, and the
internal UseCredential that decrypts for a runtime caller.

Audit: ``credential.create|update|delete|undelete|use`` (``credential.purge`` from the retention
job). No event carries a value, a ciphertext or a mask.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from typing import Final

from servicekit.audit import AuditAction
from servicekit.errors import FailedPrecondition, InvalidArgument, NotFound, RailguardError

from credentials_service.domain import (
    Credential,
    SecretValue,
    check_value,
    credential_context,
    mask,
    parse_provider,
    validate_display_name,
)
from credentials_service.ports import CredentialRepository, CredentialsUnitOfWork, SealingKeyManager
from credentials_service.usecases.common import (
    Actor,
    Deps,
    Sealer,
    caller_text,
    check_request_id,
    opening_failed,
)
from credentials_service.usecases.lifecycle import LifecycleUseCases, PurgeScan, ResourceKind

__all__ = ["CREDENTIALS", "UPDATABLE_FIELDS", "CredentialKind", "CredentialUseCases"]

UPDATABLE_FIELDS: Final = frozenset({"display_name", "value"})
_PURPOSE: Final = re.compile(r"^[\x20-\x7e]{0,200}$")

_audit = logging.getLogger("credentials_service.audit")
_log = logging.getLogger("credentials_service")

Sealed = tuple[str, int, str]
"""A replaced value, sealed before its transaction: ciphertext, key version, mask."""


def _credential_deleted() -> FailedPrecondition:
    return FailedPrecondition("the credential is deleted", reason="CREDENTIAL_DELETED")


class CredentialKind(ResourceKind[Credential]):
    create_action = AuditAction.CREDENTIAL_CREATE
    delete_action = AuditAction.CREDENTIAL_DELETE
    purge_action = AuditAction.CREDENTIAL_PURGE
    log_noun = "credential"
    collection = "credentials"
    table = "credentials"
    listing = "credentials"

    def repository(self, uow: CredentialsUnitOfWork) -> CredentialRepository:
        return uow.credentials

    def not_found(self) -> NotFound:
        return NotFound("credential not found", reason="CREDENTIAL_NOT_FOUND")

    def purged(self) -> NotFound:
        return NotFound("credential was purged", reason="CREDENTIAL_PURGED")

    def deleted(self) -> FailedPrecondition:
        return _credential_deleted()

    def vanished(self, item: Credential | None) -> RailguardError:
        return self.not_found() if item is None else _credential_deleted()

    def mark_deleted(
        self, item: Credential, now: dt.datetime, purge_at: dt.datetime, by: str
    ) -> None:
        item.mark_deleted(now, purge_at, by)

    def log_fields(self, actor: Actor, item: Credential) -> dict[str, object]:
        return {
            "workspace_id": item.workspace_id,
            "credential_id": item.id,
            "actor": actor.user_id,
            "key_version": item.key_version,
        }

    async def purge_candidates(
        self, uow: CredentialsUnitOfWork, scan: PurgeScan
    ) -> list[Credential]:
        # a credential's window was fixed when it was deleted (its purge_at)
        return await uow.credentials.purge_due(scan.now, scan.after, scan.limit)

    def purge_due(self, item: Credential, scan: PurgeScan) -> bool:
        return item.purge_due(scan.now)

    def purge_metadata(self, item: Credential) -> dict[str, str]:
        return {"provider": item.provider}


CREDENTIALS: Final = CredentialKind()


class CredentialUseCases(LifecycleUseCases[Credential]):
    """The credential RPCs, each scoped to the workspace the caller was authorised for."""

    def __init__(self, deps: Deps, kms: SealingKeyManager) -> None:
        super().__init__(CREDENTIALS, deps)
        self._uow, self._clock, self._gate = deps.shared.uow, deps.shared.clock, deps.gate
        self._audit, self._new_id = deps.audit, deps.shared.new_id
        self._kms, self._sealer = kms, Sealer(kms)

    async def create(
        self,
        actor: Actor,
        display_name: str,
        provider_name: str,
        raw_value: str,
        request_id: str,
    ) -> Credential:
        """Check, seal, store with its mask; a retry with the same ``request_id`` returns the
        first credential and records nothing."""
        await self._gate.require_alive(actor.workspace_id)
        name = validate_display_name(display_name, "credential.display_name")
        provider = parse_provider(provider_name)
        value = check_value(provider, raw_value)
        rid = check_request_id(request_id)
        existing = await self.lifecycle.existing(actor, rid)
        if existing is not None:
            return existing
        credential_id = self._new_id()
        ciphertext, version = await self._sealer.seal(
            value, credential_context(actor.workspace_id, credential_id)
        )
        now = self._clock.now()
        credential = Credential(
            id=credential_id,
            workspace_id=actor.workspace_id,
            display_name=name,
            provider=provider.name,
            masked_value=mask(provider, value),
            ciphertext=ciphertext,
            key_version=version,
            created_at=now,
            created_by=actor.user_id,
            updated_at=now,
            updated_by=actor.user_id,
        )
        stored, _ = await self.lifecycle.add(
            actor,
            credential,
            rid,
            {"provider": credential.provider, "key_version": str(version)},
        )
        return stored

    async def update(
        self, actor: Actor, credential_id: str, changes: Mapping[str, str]
    ) -> Credential:
        """Rename, or replace the value (sealed again, masked again); a deleted one is refused."""
        unknown = set(changes) - UPDATABLE_FIELDS
        if unknown or not changes:
            raise InvalidArgument.field(
                "update_mask", "may name display_name and value only", reason="INVALID_UPDATE_MASK"
            )
        display_name = (
            validate_display_name(changes["display_name"], "credential.display_name")
            if "display_name" in changes
            else None
        )

        async def seal_new_value(current: Credential) -> Sealed | None:
            if "value" not in changes:
                return None
            provider = parse_provider(current.provider)
            value = check_value(provider, changes["value"])
            ciphertext, version = await self._sealer.seal(value, current.context)
            return ciphertext, version, mask(provider, value)

        def apply(credential: Credential, sealed: Sealed | None) -> dict[str, str]:
            if display_name is not None:
                credential.display_name = display_name
            if sealed is not None:
                credential.ciphertext, credential.key_version, credential.masked_value = sealed
            credential.updated_at, credential.updated_by = self._clock.now(), actor.user_id
            return {
                "fields": ",".join(sorted(changes)),
                "key_version": str(credential.key_version),
            }

        credential, _ = await self.lifecycle.edit(
            actor, credential_id, seal_new_value, apply, "credential.update"
        )
        _audit.info(
            "credential.updated",
            extra={**CREDENTIALS.log_fields(actor, credential), "fields": sorted(changes)},
        )
        return credential

    async def undelete(self, actor: Actor, credential_id: str) -> Credential:
        """Restore a deleted credential until its ``purge_at``; never a purged one."""
        await self._gate.require_alive(actor.workspace_id)
        async with self._uow() as uow:
            credential = await uow.credentials.get(actor.workspace_id, credential_id, lock=True)
            if credential is None:
                raise CREDENTIALS.not_found()
            if credential.purged:
                raise CREDENTIALS.purged()
            if not credential.deleted:
                return credential
            now = self._clock.now()
            if credential.ciphertext is None or (
                credential.purge_at is not None and credential.purge_at <= now
            ):
                # the window has ended; the purge job just has not reached the credential yet
                raise FailedPrecondition(
                    "the credential's retention window has ended", reason="CREDENTIAL_PURGED"
                )
            credential.deleted_at = credential.purge_at = None
            credential.updated_at, credential.updated_by = now, actor.user_id
            await uow.credentials.save(credential)
            await self.lifecycle.record(uow, actor, credential, "credential.undelete")
            await uow.commit()
        self._audit.committed()
        _audit.info("credential.undeleted", extra=CREDENTIALS.log_fields(actor, credential))
        return credential

    async def use(
        self, actor: Actor, caller: str, credential_id: str, purpose: str
    ) -> tuple[Credential, SecretValue]:
        """Decrypt for a runtime caller; record the use; log it without the value."""
        if not _PURPOSE.match(purpose):
            raise InvalidArgument.field(
                "purpose",
                "must be at most 200 printable ASCII characters",
                reason="INVALID_PURPOSE",
            )
        credential = await self.get(actor, credential_id)
        if credential.deleted or credential.ciphertext is None:
            raise CREDENTIALS.not_found()
        try:
            plaintext = await self._kms.decrypt(credential.ciphertext, credential.context)
        except RailguardError as exc:
            failure = opening_failed(exc)
        else:
            now = self._clock.now()
            async with self._uow() as uow:
                stored = await uow.credentials.get(actor.workspace_id, credential_id)
                if stored is not None:
                    stored.last_used_at = now
                    await uow.credentials.save(stored)
                await self.lifecycle.record(
                    uow,
                    actor,
                    credential,
                    "credential.use",
                    {
                        "caller": caller[:64],
                        "purpose": caller_text(purpose),
                        "key_version": str(credential.key_version),
                    },
                )
                await uow.commit()
            self._audit.committed()
            credential.last_used_at = now
            _audit.info(
                "credential.used",
                extra={
                    **CREDENTIALS.log_fields(actor, credential),
                    "caller": caller,
                    "purpose": purpose,
                },
            )
            return credential, SecretValue(plaintext.decode("utf-8"))
        _log.error(
            "credential could not be decrypted",
            extra={
                **CREDENTIALS.log_fields(actor, credential),
                "caller": caller,
                "reason": failure.reason,
            },
        )
        raise failure
