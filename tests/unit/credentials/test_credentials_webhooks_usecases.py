"""The webhook-trigger and delivery use cases against the fakes: the token shown once and stored
sealed and hashed, verification in constant time with one answer for every bad delivery,
rotation, delete and purge."""

from __future__ import annotations

import datetime as dt
import hmac

import pytest
from credentials_service.domain import SecretValue, WebhookTrigger, webhook, webhook_context
from servicekit.audit import format_time

from .harness import ALICE, MALLORY, RETENTION_DAYS, Harness, refused


async def create(h: Harness, request_id: str = "") -> tuple[WebhookTrigger, SecretValue]:
    trigger, token = await h.triggers.create(ALICE, "Deploys", request_id)
    assert token is not None
    return trigger, token


async def deliver(h: Harness, trigger_id: str, token: str, size: int = 12) -> str:
    delivery = await h.deliveries.deliver(
        trigger_id, token, size, "application/json", "203.0.113.7"
    )
    return delivery.id


async def not_found(h: Harness, trigger_id: str, token: str) -> None:
    error = await refused(deliver(h, trigger_id, token))
    assert (type(error).__name__, error.reason) == ("NotFound", "WEBHOOK_TRIGGER_NOT_FOUND")
    assert str(error) == "webhook trigger not found"


# -- create and store ----------------------------------------------------------------------------


async def test_the_token_is_shown_once_and_stored_only_sealed_and_hashed(h: Harness) -> None:
    trigger, token = await create(h, request_id="r-1")
    stored = h.store.state.triggers[trigger.id]
    assert stored.token_hash == h.hasher.digest(token)
    assert stored.token_ciphertext is not None and token.reveal() not in stored.token_ciphertext
    context = webhook_context(ALICE.workspace_id, trigger.id)
    opened = await h.kms.keyring.decrypt(stored.token_ciphertext, context)
    assert opened == token.reveal().encode()
    again, shown = await h.triggers.create(ALICE, "Deploys", "r-1")
    assert again.id == trigger.id and shown is None  # a retry never shows the token again
    [event] = h.events("webhookTrigger.create")
    assert token.reveal() not in repr(event) and dict(event.metadata) == {}


async def test_a_key_manager_outage_creates_no_trigger(h: Harness) -> None:
    h.kms.down = True
    error = await refused(h.triggers.create(ALICE, "Deploys", ""))
    assert error.reason == "KMS_UNAVAILABLE"
    assert h.store.state.triggers == {} and h.store.events == []


# -- deliveries ----------------------------------------------------------------------------------


async def test_a_delivery_with_the_current_token_is_accepted_and_audited(h: Harness) -> None:
    trigger, token = await create(h)
    delivery_id = await deliver(h, trigger.id, token.reveal(), size=512)
    [delivery] = h.store.state.deliveries
    assert (delivery.id, delivery.size_bytes, delivery.source_ip) == (
        delivery_id,
        512,
        "203.0.113.7",
    )
    assert h.store.state.triggers[trigger.id].last_delivery_at == h.clock.now()
    [event] = h.events("webhookTrigger.deliver")
    assert event.actor == f"webhookTrigger:{trigger.id}" and event.client_ip == "203.0.113.7"
    assert dict(event.metadata) == {
        "delivery_id": delivery_id,
        "size_bytes": "512",
        "content_type": "application/json",
    }
    assert token.reveal() not in repr(event)


async def test_every_bad_delivery_gets_the_one_unknown_trigger_answer(h: Harness) -> None:
    trigger, token = await create(h)
    other, other_token = await create(h)
    await not_found(h, trigger.id, "rgwh_" + "A" * 43)  # well-formed, wrong
    await not_found(h, trigger.id, "not-a-token")  # malformed
    await not_found(h, "nope", token.reveal())  # unknown trigger
    await not_found(h, other.id, token.reveal())  # another trigger's token
    await h.triggers.delete(ALICE, other.id)
    await not_found(h, other.id, other_token.reveal())  # deleted trigger
    h.gate.delete(ALICE.workspace_id)
    await not_found(h, trigger.id, token.reveal())  # deleted workspace
    h.gate.purge(ALICE.workspace_id)
    await not_found(h, trigger.id, token.reveal())  # purged workspace
    assert h.store.state.deliveries == [] and h.events("webhookTrigger.deliver") == []


class _Hmac:
    """``hmac`` as the webhook domain module sees it, with a recording ``compare_digest``."""

    def __init__(self, compare: object) -> None:
        self.compare_digest = compare
        self.digest = hmac.digest


async def test_token_checks_compare_in_constant_time_even_when_the_id_is_wrong(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    trigger, token = await create(h)
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def compare(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webhook, "hmac", _Hmac(compare))
    await not_found(h, "wrong-id", token.reveal())
    digest = h.hasher.digest(token)
    assert (b"wrong-id", trigger.id.encode()) in [(b, a) for a, b in compared]
    assert (digest, digest) in compared  # the hash is compared even after the id failed
    compared.clear()
    await deliver(h, trigger.id, token.reveal())
    assert len(compared) == 2


async def test_deliveries_are_listed_newest_first_and_only_to_the_trigger_workspace(
    h: Harness,
) -> None:
    trigger, token = await create(h)
    ids = []
    for _ in range(3):
        ids.append(await deliver(h, trigger.id, token.reveal()))
        h.clock.advance(seconds=1)
    first, next_token = await h.deliveries.list(ALICE, trigger.id, 2, "")
    rest, last = await h.deliveries.list(ALICE, trigger.id, 2, next_token)
    assert [d.id for d in first + rest] == ids[::-1] and last == ""
    error = await refused(h.deliveries.list(MALLORY, trigger.id, 2, ""))
    assert error.reason == "WEBHOOK_TRIGGER_NOT_FOUND"


# -- rotation, delete, purge ---------------------------------------------------------------------


async def test_rotation_replaces_the_token_at_once(h: Harness) -> None:
    trigger, old = await create(h)
    h.clock.advance(minutes=1)
    rotated, new = await h.triggers.rotate_token(ALICE, trigger.id)
    assert new.reveal() != old.reveal() and rotated.token_issued_at == h.clock.now()
    await not_found(h, trigger.id, old.reveal())
    await deliver(h, trigger.id, new.reveal())
    [event] = h.events("webhookTrigger.rotateToken")
    assert dict(event.metadata) == {"key_version": "1"} and new.reveal() not in repr(event)


async def test_a_deleted_trigger_cannot_be_rotated(h: Harness) -> None:
    trigger, _ = await create(h)
    await h.triggers.delete(ALICE, trigger.id)
    error = await refused(h.triggers.rotate_token(ALICE, trigger.id))
    assert (type(error).__name__, error.reason) == ("FailedPrecondition", "TRIGGER_DELETED")
    assert h.events("webhookTrigger.rotateToken") == []


async def test_a_deleted_trigger_is_purged_after_the_window_and_leaves_a_tombstone(
    h: Harness,
) -> None:
    trigger, token = await create(h)
    deleted = await h.triggers.delete(ALICE, trigger.id)
    await h.triggers.delete(ALICE, trigger.id)  # a repeat records nothing
    [event] = h.events("webhookTrigger.delete")
    assert deleted.deleted_at is not None
    purge_at = deleted.deleted_at + dt.timedelta(days=RETENTION_DAYS)
    assert event.metadata["purge_time"] == format_time(purge_at)
    h.clock.advance(days=RETENTION_DAYS, seconds=-1)
    assert await h.retention.purge_expired() == ([], [])
    h.clock.advance(seconds=1)
    assert await h.retention.purge_expired() == ([], [trigger.id])
    tomb = h.store.state.triggers[trigger.id]
    assert (tomb.token_hash, tomb.token_ciphertext, tomb.purged_at) == (None, None, h.clock.now())
    [purge] = h.events("webhookTrigger.purge")
    assert purge.actor == "system" and set(purge.metadata) == {"delete_time"}
    error = await refused(h.triggers.get(ALICE, trigger.id))
    assert (type(error).__name__, error.reason) == ("NotFound", "WEBHOOK_TRIGGER_PURGED")
    await not_found(h, trigger.id, token.reveal())
    rows, _ = await h.triggers.list(ALICE, 10, "", True)
    assert rows == []


async def test_another_workspace_cannot_see_or_delete_the_trigger(h: Harness) -> None:
    trigger, _ = await create(h)
    for call in (h.triggers.get, h.triggers.delete, h.triggers.rotate_token):
        error = await refused(call(MALLORY, trigger.id))
        assert error.reason == "WEBHOOK_TRIGGER_NOT_FOUND"
    assert not h.store.state.triggers[trigger.id].deleted
