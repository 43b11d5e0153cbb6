"""The credential use cases against the fakes: masking, no secret out, update, delete/restore/purge
with retention, UseCredential and the workspace gate, key rotation."""

from __future__ import annotations

import datetime as dt

import pytest
from credentials_service.domain import Credential, credential_context
from credentials_service.usecases import Actor
from servicekit.audit import format_time

from .harness import (
    ALICE,
    MALLORY,
    OPENAI,
    OPENAI_MASK,
    RETENTION_DAYS,
    Harness,
    refused,
)

OTHER_OPENAI = "sk-proj-zyxWVUtsrQPOnmlKJIhgfEDcba9876543210"  # noqa: S105 - made up


async def create(h: Harness, value: str = OPENAI, request_id: str = "") -> Credential:
    return await h.credentials.create(ALICE, "Prod", "openai", value, request_id)


def leaks(h: Harness, *secrets: str) -> list[str]:
    """Every audit event's text that contains one of ``secrets``."""
    return [repr(e) for e in h.store.events for s in secrets if s and s in repr(e)]


# -- create --------------------------------------------------------------------------------------


async def test_create_stores_only_the_mask_and_a_ciphertext_bound_to_the_credential(
    h: Harness,
) -> None:
    credential = await create(h)
    assert credential.masked_value == OPENAI_MASK
    stored = h.store.state.credentials[credential.id]
    assert stored.ciphertext is not None and OPENAI not in stored.ciphertext
    assert OPENAI not in repr(stored)  # the ciphertext is not in the repr either
    context = credential_context(ALICE.workspace_id, credential.id)
    assert await h.kms.keyring.decrypt(stored.ciphertext, context) == OPENAI.encode()
    other = credential_context(ALICE.workspace_id, "another")
    error = await refused(h.kms.keyring.decrypt(stored.ciphertext, other))
    assert error.reason == "KMS_CONTEXT_MISMATCH"
    [event] = h.events("credential.create")
    assert (
        event.actor == "user:alice"
        and event.target == f"workspaces/ws_a/credentials/{credential.id}"
    )
    assert dict(event.metadata) == {"provider": "openai", "key_version": "1"}
    assert leaks(h, OPENAI, stored.ciphertext, OPENAI_MASK) == []
    assert h.relay_pokes == [1]


async def test_a_bad_value_is_refused_without_echoing_it_and_nothing_is_stored(
    h: Harness,
) -> None:
    error = await refused(create(h, value="sk-proj-short\x01"))
    assert error.reason == "CREDENTIAL_VALUE_INVALID"
    assert "sk-proj-short" not in str(error)
    assert h.store.state.credentials == {} and h.store.events == [] and h.kms.encrypted == []


async def test_a_key_manager_outage_stores_nothing_and_is_unavailable(h: Harness) -> None:
    h.kms.down = True
    error = await refused(create(h))
    assert (type(error).__name__, error.reason) == ("Unavailable", "KMS_UNAVAILABLE")
    assert h.store.state.credentials == {} and h.store.events == []


async def test_a_retried_create_returns_the_first_credential_and_records_once(h: Harness) -> None:
    first = await create(h, request_id="r-1")
    again = await create(h, value=OTHER_OPENAI, request_id="r-1")
    assert again.id == first.id and again.masked_value == OPENAI_MASK
    assert len(h.store.state.credentials) == 1 and len(h.events("credential.create")) == 1
    assert len(h.kms.encrypted) == 1  # the retry sealed nothing


async def test_a_create_that_loses_the_request_id_race_returns_the_winner(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    winner = await create(h, request_id="r-1")
    real_existing = h.credentials.lifecycle.existing
    looks = 0

    async def first_look_misses(actor: Actor, rid: str | None) -> Credential | None:
        """The loser looked before the winner committed, and stores after it did."""
        nonlocal looks
        looks += 1
        return None if looks == 1 else await real_existing(actor, rid)

    monkeypatch.setattr(h.credentials.lifecycle, "existing", first_look_misses)
    got = await create(h, value=OTHER_OPENAI, request_id="r-1")
    assert got.id == winner.id and got.masked_value == OPENAI_MASK and looks == 2
    assert len(h.store.state.credentials) == 1 and len(h.events("credential.create")) == 1


async def test_a_deleted_workspace_refuses_creation(h: Harness) -> None:
    h.gate.delete(ALICE.workspace_id)
    error = await refused(create(h))
    assert (type(error).__name__, error.reason) == ("FailedPrecondition", "WORKSPACE_DELETED")
    assert h.store.state.credentials == {} and h.kms.encrypted == []


# -- read ----------------------------------------------------------------------------------------


async def test_another_workspace_cannot_see_the_credential(h: Harness) -> None:
    credential = await create(h)
    error = await refused(h.credentials.get(MALLORY, credential.id))
    assert (type(error).__name__, error.reason) == ("NotFound", "CREDENTIAL_NOT_FOUND")
    rows, _ = await h.credentials.list(MALLORY, 0, "", True)
    assert rows == []


async def test_list_pages_in_id_order_and_hides_deleted_ones_unless_asked(h: Harness) -> None:
    made = [await create(h) for _ in range(3)]
    await h.credentials.delete(ALICE, made[1].id)
    first, token = await h.credentials.list(ALICE, 1, "", False)
    second, token2 = await h.credentials.list(ALICE, 1, token, False)
    assert [c.id for c in first + second] == [made[0].id, made[2].id] and token2 == ""
    everything, _ = await h.credentials.list(ALICE, 10, "", True)
    assert [c.id for c in everything] == [c.id for c in made]
    error = await refused(h.credentials.list(ALICE, 1, token, True))  # another query's token
    assert type(error).__name__ == "InvalidArgument"


# -- update --------------------------------------------------------------------------------------


async def test_replacing_the_value_seals_it_again_and_masks_it_again(h: Harness) -> None:
    credential = await create(h)
    old = h.store.state.credentials[credential.id].ciphertext
    updated = await h.credentials.update(ALICE, credential.id, {"value": OTHER_OPENAI})
    assert updated.masked_value == "sk-proj-zyx...3210"
    assert updated.ciphertext != old
    _, value = await h.credentials.use(ALICE, "runtime", credential.id, "")
    assert value.reveal() == OTHER_OPENAI
    [event] = h.events("credential.update")
    assert dict(event.metadata) == {"fields": "value", "key_version": "1"}
    assert leaks(h, OPENAI, OTHER_OPENAI, "sk-proj-zyx...3210") == []


async def test_renaming_keeps_the_sealed_value(h: Harness) -> None:
    credential = await create(h)
    h.clock.advance(minutes=5)
    updated = await h.credentials.update(ALICE, credential.id, {"display_name": "  Staging "})
    assert updated.display_name == "Staging" and updated.ciphertext == credential.ciphertext
    assert updated.updated_at == h.clock.now() and len(h.kms.encrypted) == 1


async def test_update_refuses_unknown_fields_bad_values_and_deleted_credentials(
    h: Harness,
) -> None:
    credential = await create(h)
    error = await refused(h.credentials.update(ALICE, credential.id, {"provider": "aws"}))
    assert error.reason == "INVALID_UPDATE_MASK"
    error = await refused(h.credentials.update(ALICE, credential.id, {"value": "nope"}))
    assert error.reason == "CREDENTIAL_FORMAT_MISMATCH" and "nope" not in str(error)
    await h.credentials.delete(ALICE, credential.id)
    error = await refused(h.credentials.update(ALICE, credential.id, {"display_name": "X"}))
    assert (type(error).__name__, error.reason) == ("FailedPrecondition", "CREDENTIAL_DELETED")
    assert h.events("credential.update") == []


# -- delete, restore, purge ----------------------------------------------------------------------


async def test_delete_sets_the_purge_time_and_is_idempotent(h: Harness) -> None:
    credential = await create(h)
    deleted = await h.credentials.delete(ALICE, credential.id)
    purge_at = h.clock.now() + dt.timedelta(days=RETENTION_DAYS)
    assert deleted.deleted and deleted.purge_at == purge_at
    await h.credentials.delete(ALICE, credential.id)
    [event] = h.events("credential.delete")
    assert dict(event.metadata) == {"purge_time": format_time(purge_at)}


async def test_a_deleted_credential_is_restored_within_its_window(h: Harness) -> None:
    credential = await create(h)
    await h.credentials.delete(ALICE, credential.id)
    h.clock.advance(days=RETENTION_DAYS - 1)
    restored = await h.credentials.undelete(ALICE, credential.id)
    assert not restored.deleted and restored.purge_at is None
    assert [e.action for e in h.store.events] == [
        "credential.create",
        "credential.delete",
        "credential.undelete",
    ]
    _, value = await h.credentials.use(ALICE, "runtime", credential.id, "")
    assert value.reveal() == OPENAI


async def test_after_the_window_restore_is_refused_and_the_job_leaves_a_tombstone(
    h: Harness,
) -> None:
    credential = await create(h)
    keep = await create(h)
    await h.credentials.delete(ALICE, credential.id)
    h.clock.advance(days=RETENTION_DAYS)
    error = await refused(h.credentials.undelete(ALICE, credential.id))
    assert (type(error).__name__, error.reason) == ("FailedPrecondition", "CREDENTIAL_PURGED")
    assert await h.retention.purge_expired() == ([credential.id], [])
    tomb = h.store.state.credentials[credential.id]
    assert (tomb.ciphertext, tomb.masked_value, tomb.purged_at) == (None, "", h.clock.now())
    assert h.store.state.credentials[keep.id].ciphertext is not None
    [event] = h.events("credential.purge")
    assert event.actor == "system"
    assert dict(event.metadata) == {
        "provider": "openai",
        "delete_time": format_time(h.clock.now() - dt.timedelta(days=RETENTION_DAYS)),
    }
    for call in (h.credentials.get, h.credentials.undelete, h.credentials.delete):
        error = await refused(call(ALICE, credential.id))
        assert (type(error).__name__, error.reason) == ("NotFound", "CREDENTIAL_PURGED")
    rows, _ = await h.credentials.list(ALICE, 10, "", True)
    assert [c.id for c in rows] == [keep.id]  # tombstones are never listed
    assert await h.retention.purge_expired() == ([], [])  # nothing twice


async def test_the_purge_job_leaves_a_credential_inside_its_window(h: Harness) -> None:
    credential = await create(h)
    await h.credentials.delete(ALICE, credential.id)
    h.clock.advance(days=RETENTION_DAYS, seconds=-1)
    assert await h.retention.purge_expired() == ([], [])
    assert h.store.state.credentials[credential.id].ciphertext is not None


# -- UseCredential -------------------------------------------------------------------------------


async def test_use_decrypts_records_the_use_and_never_logs_the_value(h: Harness) -> None:
    credential = await create(h)
    h.clock.advance(seconds=10)
    used, value = await h.credentials.use(ALICE, "runtime", credential.id, "run 42")
    assert value.reveal() == OPENAI and OPENAI not in repr(value)
    assert used.last_used_at == h.clock.now()
    assert h.store.state.credentials[credential.id].last_used_at == h.clock.now()
    [event] = h.events("credential.use")
    assert dict(event.metadata) == {"caller": "runtime", "purpose": "run 42", "key_version": "1"}
    assert leaks(h, OPENAI) == []


async def test_use_is_refused_for_deleted_credentials_and_bad_purposes(h: Harness) -> None:
    credential = await create(h)
    error = await refused(h.credentials.use(ALICE, "runtime", credential.id, "tab\there"))
    assert error.reason == "INVALID_PURPOSE"
    await h.credentials.delete(ALICE, credential.id)
    error = await refused(h.credentials.use(ALICE, "runtime", credential.id, ""))
    assert (type(error).__name__, error.reason) == ("NotFound", "CREDENTIAL_NOT_FOUND")
    assert h.events("credential.use") == []


async def test_use_is_refused_once_the_workspace_is_deleted_or_purged(h: Harness) -> None:
    credential = await create(h)
    h.gate.delete(ALICE.workspace_id)
    error = await refused(h.credentials.use(ALICE, "runtime", credential.id, ""))
    assert (type(error).__name__, error.reason) == ("FailedPrecondition", "WORKSPACE_DELETED")
    h.gate.purge(ALICE.workspace_id)
    error = await refused(h.credentials.use(ALICE, "runtime", credential.id, ""))
    assert (type(error).__name__, error.reason) == ("NotFound", "WORKSPACE_NOT_FOUND")
    assert h.events("credential.use") == []


async def test_use_fails_closed_when_the_key_manager_is_down(h: Harness) -> None:
    credential = await create(h)
    h.kms.down = True
    error = await refused(h.credentials.use(ALICE, "runtime", credential.id, ""))
    assert (type(error).__name__, error.reason) == ("Unavailable", "KMS_UNAVAILABLE")
    assert h.events("credential.use") == []


async def test_a_ciphertext_moved_onto_another_credential_does_not_open(h: Harness) -> None:
    victim = await create(h)
    thief = await create(h, value=OTHER_OPENAI)
    stolen = h.store.state.credentials[victim.id].ciphertext
    h.store.state.credentials[thief.id].ciphertext = stolen
    error = await refused(h.credentials.use(ALICE, "runtime", thief.id, ""))
    assert (type(error).__name__, error.reason) == ("FailedPrecondition", "KMS_CONTEXT_MISMATCH")


# -- key rotation --------------------------------------------------------------------------------


async def test_rewrap_moves_every_secret_to_the_new_version_and_retires_the_old(
    h: Harness,
) -> None:
    credential = await create(h)
    trigger, token = await h.triggers.create(ALICE, "Deploys", "")
    assert token is not None
    old = h.store.state.credentials[credential.id].ciphertext
    seen: list[tuple[str, int, int]] = []
    report = await h.rotation.rewrap(progress=lambda k, d, t: seen.append((k, d, t)))
    assert (report.key_version, report.rewrapped, report.failed) == (2, 2, 0)
    assert report.min_decryption_version == 2
    assert seen == [("credentials", 0, 1), ("credentials", 1, 1)] + [
        ("webhook_triggers", 0, 1),
        ("webhook_triggers", 1, 1),
    ]
    stored = h.store.state.credentials[credential.id]
    assert stored.key_version == 2 and stored.ciphertext != old
    _, value = await h.credentials.use(ALICE, "runtime", credential.id, "")
    assert value.reveal() == OPENAI
    assert old is not None
    error = await refused(h.kms.keyring.decrypt(old, stored.context))
    assert error.reason == "KMS_KEY_VERSION_RETIRED"
    assert (await h.triggers.get(ALICE, trigger.id)).key_version == 2
    delivery = await h.deliveries.deliver(trigger.id, token.reveal(), 2, "application/json", "")
    assert delivery.trigger_id == trigger.id
