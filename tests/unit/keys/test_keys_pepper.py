"""Keyed hashing under a versioned pepper: lookup candidates, verification, rehash."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from keys_service.domain import KeyEnvironment, KeyHash, PepperRing, generate_key
from keys_service.domain.key_format import _compose
from servicekit.errors import Unavailable

P1, P2, P3 = b"1" * 32, b"2" * 32, b"3" * 32


def test_hashes_with_the_current_version_and_verifies_old_ones() -> None:
    key = generate_key(KeyEnvironment.LIVE)
    old = PepperRing({1: P1}, current=1).hash(key)
    ring = PepperRing({1: P1, 2: P2}, current=2)
    new = ring.hash(key)
    assert (old.pepper_version, new.pepper_version) == (1, 2)
    assert old.digest != new.digest and len(new.digest) == 32
    assert ring.matches(key, old) and ring.matches(key, new)
    assert ring.needs_rehash(old) and not ring.needs_rehash(new)


def test_lookup_hashes_cover_every_version_current_first() -> None:
    key = generate_key(KeyEnvironment.TEST)
    ring = PepperRing({1: P1, 3: P3, 2: P2}, current=2)
    candidates = ring.lookup_hashes(key)
    assert [c.pepper_version for c in candidates] == [2, 3, 1]
    assert all(ring.matches(key, c) for c in candidates)
    assert len({c.digest for c in candidates}) == 3


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_different_keys_never_match(a: bytes, b: bytes) -> None:
    ring = PepperRing({1: P1}, current=1)
    ka, kb = _compose(KeyEnvironment.LIVE, a), _compose(KeyEnvironment.LIVE, b)
    assert ring.matches(kb, ring.hash(ka)) is (a == b)


def test_same_key_different_pepper_does_not_match() -> None:
    key = generate_key(KeyEnvironment.LIVE)
    stored = PepperRing({1: P1}, current=1).hash(key)
    assert not PepperRing({1: P2}, current=1).matches(key, stored)


def test_retired_version_fails_closed() -> None:
    key = generate_key(KeyEnvironment.LIVE)
    with pytest.raises(Unavailable) as info:
        PepperRing({2: P2}, current=2).matches(key, KeyHash(1, b"\x00" * 32))
    assert info.value.reason == "PEPPER_VERSION_UNKNOWN"


@pytest.mark.parametrize(
    ("peppers", "current"),
    [({1: P1}, 2), ({1: b"short"}, 1), ({0: P1}, 0), ({}, 1)],
)
def test_rejects_bad_configuration(peppers: dict[int, bytes], current: int) -> None:
    with pytest.raises(ValueError):
        PepperRing(peppers, current=current)


def test_pepper_and_digest_never_printed() -> None:
    key = generate_key(KeyEnvironment.LIVE)
    ring = PepperRing({1: P1, 2: P2}, current=2)
    stored = ring.hash(key)
    assert repr(ring) == str(ring) == "PepperRing(current=2, versions=[1, 2])"
    assert stored.digest.hex() not in repr(stored) and repr(stored.digest) not in repr(stored)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(ring)
