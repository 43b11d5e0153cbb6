"""Property tests for the ``vault:v<N>:<base64>`` parser: exact round-trip, garbage refused."""

from __future__ import annotations

import base64

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from servicekit.errors import InvalidArgument
from servicekit.kms import KMS_CIPHERTEXT_INVALID, Ciphertext, parse_ciphertext

versions = st.integers(min_value=1, max_value=2**31 - 1)
payloads = st.binary(min_size=28, max_size=512)


@given(versions, payloads)
def test_round_trip(version: int, payload: bytes) -> None:
    text = str(Ciphertext(version, payload))
    assert text == f"vault:v{version}:{base64.b64encode(payload).decode()}"
    parsed = parse_ciphertext(text)
    assert (parsed.version, parsed.payload) == (version, payload)
    assert parsed.nonce + parsed.sealed == payload and len(parsed.nonce) == 12


@given(st.text(max_size=300))
@example("vault:v1:")
@example("vault:v0:" + "A" * 40)
@example("vault:v-1:" + "A" * 40)
@example("vault:v+1:" + "A" * 40)
@example("vault:v١:" + "A" * 40)  # a non-ASCII digit
@example("vault:v1:" + "A" * 39 + "=")
@example("vault:v1:" + "A" * 38 + "B=")  # non-canonical trailing bits
@example("vault:v1:" + "A" * 40 + "\n")
@example("vault:v99999999999:" + "A" * 40)
def test_anything_else_is_refused_or_canonical(text: str) -> None:
    """Every string either fails with KMS_CIPHERTEXT_INVALID or is its parse's exact spelling."""
    try:
        parsed = parse_ciphertext(text)
    except InvalidArgument as error:
        assert error.reason == KMS_CIPHERTEXT_INVALID
        return
    assert str(parsed) == text


@given(versions, payloads, st.integers(min_value=0), st.characters())
def test_single_character_edits_never_crash(
    version: int, payload: bytes, position: int, replacement: str
) -> None:
    text = str(Ciphertext(version, payload))
    index = position % len(text)
    edited = text[:index] + replacement + text[index + 1 :]
    try:
        assert str(parse_ciphertext(edited)) == edited
    except InvalidArgument as error:
        assert error.reason == KMS_CIPHERTEXT_INVALID


@pytest.mark.parametrize("bad", [None, b"vault:v1:AAAA", 17, "x" * 2_000_000])
def test_non_strings_and_oversized_are_refused(bad: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_ciphertext(bad)  # type: ignore[arg-type]
    assert caught.value.reason == KMS_CIPHERTEXT_INVALID


def test_short_payload_and_bad_version_are_refused() -> None:
    for version, payload in ((1, b"x" * 27), (0, b"x" * 28), (2**31, b"x" * 28)):
        with pytest.raises(InvalidArgument):
            Ciphertext(version, payload)
