"""Access-token verification at the edge: pinned algorithm and claims, and a memo that never
outlives a token's expiry nor serves a different token."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from edge_service.tokens import TokenVerifier
from jwt.algorithms import OKPAlgorithm
from servicekit import Unauthenticated

ISS, AUD = "https://railguard.test", "railguard"


@pytest.fixture
def signer() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k1", alg="EdDSA", use="sig")
    return key, json.dumps({"keys": [jwk]})


def _token(key: Ed25519PrivateKey, exp_in: float, **header: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISS,
        "aud": AUD,
        "sub": "u1",
        "sid": "s1",
        "jti": "j",
        "iat": now,
        "nbf": now,
        "exp": now + exp_in,
    }
    return jwt.encode(
        claims, key, algorithm="EdDSA", headers={"kid": "k1", "typ": "at+jwt", **header}
    )


async def test_verified_tokens_are_remembered_until_expiry(
    signer: tuple[Ed25519PrivateKey, str],
) -> None:
    key, jwks = signer
    fetches = 0

    async def fetch() -> str:
        nonlocal fetches
        fetches += 1
        return jwks

    verifier = TokenVerifier(fetch, ISS, AUD)
    token = _token(key, 600)
    first = await verifier.verify(token)
    assert first.user_id == "u1" and await verifier.verify(token) is first
    # a tampered copy is another string: verified afresh, and refused
    with pytest.raises(Unauthenticated):
        await verifier.verify(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
    # an entry past its expiry is never served, even if planted
    verifier._verified[token] = (time.time() - 1, first)
    stale = _token(key, -60)
    verifier._verified[stale] = (time.time() - 1, first)
    with pytest.raises(Unauthenticated) as err:
        await verifier.verify(stale)
    assert err.value.reason == "TOKEN_EXPIRED"
    assert fetches == 1


async def test_wrong_typ_or_unknown_kid_is_refused(signer: tuple[Ed25519PrivateKey, str]) -> None:
    key, jwks = signer

    async def fetch() -> str:
        return jwks

    verifier = TokenVerifier(fetch, ISS, AUD, min_refetch_seconds=0)
    for token in (_token(key, 600, typ="JWT"), _token(key, 600, kid="k2")):
        with pytest.raises(Unauthenticated) as err:
            await verifier.verify(token)
        assert err.value.reason == "TOKEN_INVALID"


def _alias_of_last_char(segment: str) -> str:
    """The same bytes spelled differently: an Ed25519 signature (64 bytes, 86 characters) has
    four unused bits in its last character, which lenient decoders ignore."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(segment[-1])
    return segment[:-1] + alphabet[(index & ~0b1111) | ((index + 1) & 0b1111)]


async def test_non_canonical_base64url_is_refused(signer: tuple[Ed25519PrivateKey, str]) -> None:
    key, jwks = signer

    async def fetch() -> str:
        return jwks

    verifier = TokenVerifier(fetch, ISS, AUD)
    token = _token(key, 600)
    header, payload, signature = token.split(".")
    variants = [
        token + "==",  # padding on the signature
        f"{header}.{payload}.{signature}=",
        f"{header}==.{payload}.{signature}",
        f"{header}.{payload}.{_alias_of_last_char(signature)}",  # trailing bits set
        f"{header}.{payload}+.{signature}",  # another alphabet
        f"{header}.{payload}.{signature}.",
    ]
    for variant in variants:
        with pytest.raises(Unauthenticated) as err:
            await verifier.verify(variant)
        assert err.value.reason == "TOKEN_INVALID", variant
    assert (await verifier.verify(token)).user_id == "u1"  # the canonical spelling still works
