"""Tombstones of purged credentials and triggers, and the purge-due rules."""

from __future__ import annotations

import datetime as dt

from credentials_service.domain import Credential, SecretValue, TokenHasher, WebhookTrigger

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HASHER = TokenHasher(b"p" * 32)


def test_a_purged_credential_keeps_only_its_tombstone() -> None:
    credential = Credential(
        id="c1",
        workspace_id="w",
        display_name="Prod",
        provider="openai",
        masked_value="sk-proj-abc...xyz9",
        ciphertext="vault:v1:abc",
        key_version=1,
        created_at=T0,
        created_by="alice",
        updated_at=T0,
        updated_by="alice",
        deleted_at=T0,
        purge_at=T0 + dt.timedelta(days=30),
    )
    assert not credential.purge_due(T0 + dt.timedelta(days=29))
    assert credential.purge_due(T0 + dt.timedelta(days=30))
    credential.purge(T0 + dt.timedelta(days=30))
    assert (credential.ciphertext, credential.masked_value) == (None, "")
    assert credential.purged and not credential.purge_due(T0 + dt.timedelta(days=31))
    assert (credential.display_name, credential.provider) == ("Prod", "openai")


def test_a_purged_trigger_matches_no_token() -> None:
    token = SecretValue("rgwh_" + "A" * 43)
    digest = HASHER.digest(token)
    trigger = WebhookTrigger(
        id="t1",
        workspace_id="w",
        display_name="Deploys",
        token_ciphertext="vault:v1:abc",
        key_version=1,
        token_hash=digest,
        created_at=T0,
        created_by="alice",
        token_issued_at=T0,
    )
    retention = dt.timedelta(days=30)
    assert not trigger.purge_due(T0 + retention, retention)  # not deleted
    trigger.deleted_at = T0
    assert trigger.purge_due(T0 + retention, retention)
    trigger.purge(T0 + retention)
    assert trigger.token_hash is None and trigger.token_ciphertext is None and trigger.purged
    assert not trigger.matches("t1", digest)
    assert not trigger.matches("t1", bytes(32))
