"""One contract, every backend: LocalKeyring, VaultTransit on the test server, and a real Vault."""

from __future__ import annotations

import base64
import re

import pytest
from servicekit.errors import FailedPrecondition, InvalidArgument, RailguardError
from servicekit.kms import (
    KMS_CIPHERTEXT_INVALID,
    KMS_CONTEXT_INVALID,
    KMS_CONTEXT_MISMATCH,
    KMS_KEY_NOT_DERIVED,
    KMS_KEY_VERSION_INVALID,
    KMS_KEY_VERSION_RETIRED,
    KeyInfo,
    KeyManager,
    parse_ciphertext,
)

from .conftest import MakeKeyManager

CTX = "workspace/ws_1/credential/cred_1"
OTHER_CTX = "workspace/ws_2/credential/cred_1"
SECRET = b"sk-live-0123456789abcdef-do-not-leak"
FORMAT = re.compile(r"vault:v(\d+):[A-Za-z0-9+/]+={0,2}")


def assert_no_secret(error: RailguardError, *secrets: bytes) -> None:
    """Errors carry no plaintext, nor the hvac exception (with its response body) behind them."""
    text = f"{error!s} {error!r} {error.metadata!r}"
    for secret in secrets:
        assert secret.decode() not in text
        assert base64.b64encode(secret).decode() not in text
    assert error.__cause__ is None
    assert error.__context__ is None or isinstance(error.__context__, RailguardError)


async def test_round_trip_uses_vault_format(make_key_manager: MakeKeyManager) -> None:
    km = await make_key_manager()
    ciphertext = await km.encrypt(SECRET, CTX)
    assert FORMAT.fullmatch(ciphertext)
    assert parse_ciphertext(ciphertext).version == 1
    assert SECRET not in base64.b64decode(ciphertext.split(":")[2])
    assert await km.decrypt(ciphertext, CTX) == SECRET
    binary = bytes(range(256))
    assert await km.decrypt(await km.encrypt(binary, CTX), CTX) == binary
    assert await km.encrypt(SECRET, CTX) != ciphertext  # fresh nonce each time


async def test_wrong_context_fails(make_key_manager: MakeKeyManager) -> None:
    km = await make_key_manager()
    ciphertext = await km.encrypt(SECRET, CTX)
    with pytest.raises(InvalidArgument) as caught:
        await km.decrypt(ciphertext, OTHER_CTX)
    assert caught.value.reason == KMS_CONTEXT_MISMATCH
    assert_no_secret(caught.value, SECRET)


async def test_ciphertext_of_another_key_fails(make_key_manager: MakeKeyManager) -> None:
    first, second = await make_key_manager(), await make_key_manager()
    with pytest.raises(InvalidArgument) as caught:
        await second.decrypt(await first.encrypt(SECRET, CTX), CTX)
    assert caught.value.reason == KMS_CONTEXT_MISMATCH


async def test_tampered_ciphertext_fails(make_key_manager: MakeKeyManager) -> None:
    km = await make_key_manager()
    ciphertext = await km.encrypt(SECRET, CTX)
    payload = bytearray(parse_ciphertext(ciphertext).payload)
    for index in (0, 13, len(payload) - 1):  # nonce, body, tag
        flipped = bytearray(payload)
        flipped[index] ^= 0x01
        tampered = f"vault:v1:{base64.b64encode(flipped).decode()}"
        with pytest.raises(InvalidArgument) as caught:
            await km.decrypt(tampered, CTX)
        assert caught.value.reason == KMS_CONTEXT_MISMATCH
    malformed = [
        ciphertext.replace("vault:v1:", "vault:v01:"),
        ciphertext.replace("vault:", "vaulx:"),
        ciphertext[:-1],
        ciphertext + "!",
        "vault:v1:" + base64.b64encode(bytes(payload[:20])).decode(),
        "",
    ]
    for bad in malformed:
        with pytest.raises(InvalidArgument) as caught:
            await km.decrypt(bad, CTX)
        assert caught.value.reason == KMS_CIPHERTEXT_INVALID, bad


async def test_bad_context_is_refused_before_use(make_key_manager: MakeKeyManager) -> None:
    km = await make_key_manager()
    for context in ("", "tab\there", "x" * 1025):
        with pytest.raises(InvalidArgument) as caught:
            await km.encrypt(SECRET, context)
        assert caught.value.reason == KMS_CONTEXT_INVALID


async def test_rotation_and_rewrap(make_key_manager: MakeKeyManager) -> None:
    km = await make_key_manager()
    old = await km.encrypt(SECRET, CTX)
    assert await km.rotate() == 2
    new = await km.encrypt(SECRET, CTX)
    assert parse_ciphertext(new).version == 2
    assert await km.decrypt(old, CTX) == SECRET

    rewrapped = await km.rewrap(old, CTX)
    assert parse_ciphertext(rewrapped).version == 2
    assert rewrapped not in (old, new)
    assert await km.decrypt(rewrapped, CTX) == SECRET
    with pytest.raises(InvalidArgument) as caught:
        await km.rewrap(old, OTHER_CTX)
    assert caught.value.reason == KMS_CONTEXT_MISMATCH
    info = await km.key_info()
    assert (info.latest_version, info.min_decryption_version, info.derived) == (2, 1, True)
    assert info.type == "aes256-gcm96"


async def test_min_decryption_version_retires_old_ciphertext(
    make_key_manager: MakeKeyManager,
) -> None:
    km = await make_key_manager()
    old = await km.encrypt(SECRET, CTX)
    await km.rotate()
    new = await km.encrypt(SECRET, CTX)
    info = await km.set_min_decryption_version(2)
    assert info.min_decryption_version == 2
    for attempt in (km.decrypt(old, CTX), km.rewrap(old, CTX)):
        with pytest.raises(FailedPrecondition) as caught:
            await attempt
        assert caught.value.reason == KMS_KEY_VERSION_RETIRED
        assert_no_secret(caught.value, SECRET)
    assert await km.decrypt(new, CTX) == SECRET
    with pytest.raises(InvalidArgument) as invalid:
        await km.set_min_decryption_version(3)
    assert invalid.value.reason == KMS_KEY_VERSION_INVALID
    with pytest.raises(InvalidArgument):
        await km.set_min_decryption_version(0)
    # A policy floor, not erasure: lowering it restores access.
    await km.set_min_decryption_version(1)
    assert await km.decrypt(old, CTX) == SECRET


async def test_batches(make_key_manager: MakeKeyManager) -> None:
    km = await make_key_manager()
    items = [(f"secret-{i}".encode(), f"workspace/ws_1/credential/c{i}") for i in range(5)]
    ciphertexts = await km.encrypt_batch(items)
    assert len(ciphertexts) == 5 and all(FORMAT.fullmatch(c) for c in ciphertexts)
    pairs = [(c, ctx) for c, (_, ctx) in zip(ciphertexts, items, strict=True)]
    assert await km.decrypt_batch(pairs) == [pt for pt, _ in items]
    assert await km.encrypt_batch([]) == [] and await km.decrypt_batch([]) == []

    await km.rotate()
    rewrapped = await km.rewrap_batch(pairs)
    assert [parse_ciphertext(c).version for c in rewrapped] == [2] * 5
    assert await km.decrypt_batch(list(zip(rewrapped, [ctx for _, ctx in items], strict=True))) == [
        pt for pt, _ in items
    ]

    swapped = [pairs[0], (pairs[1][0], pairs[2][1]), pairs[2]]
    for operation in (km.decrypt_batch, km.rewrap_batch):
        with pytest.raises(InvalidArgument) as caught:
            await operation(swapped)
        assert caught.value.reason == KMS_CONTEXT_MISMATCH
        assert caught.value.metadata["index"] == "1"
        assert_no_secret(caught.value, *(pt for pt, _ in items))
    with pytest.raises(InvalidArgument) as malformed:
        await km.decrypt_batch([pairs[0], ("vault:v1:???", CTX)])
    assert malformed.value.reason == KMS_CIPHERTEXT_INVALID
    assert malformed.value.metadata["index"] == "1"


async def test_self_check(make_key_manager: MakeKeyManager) -> None:
    km = await make_key_manager()
    info = await km.self_check()
    assert isinstance(info, KeyInfo) and info.derived and info.latest_version == 1
    assert isinstance(km, KeyManager)


async def test_non_derived_key_is_refused(make_key_manager: MakeKeyManager) -> None:
    km = await make_key_manager(derived=False)
    with pytest.raises(FailedPrecondition) as caught:
        await km.self_check()
    assert caught.value.reason == KMS_KEY_NOT_DERIVED
    # Fail closed: a context would be silently ignored, so nothing is encrypted either.
    with pytest.raises(FailedPrecondition) as refused:
        await km.encrypt(SECRET, CTX)
    assert refused.value.reason == KMS_KEY_NOT_DERIVED
    assert (await km.key_info()).derived is False
