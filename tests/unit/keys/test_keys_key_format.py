"""The key format: CSPRNG generation, offline parsing, every defect with its own reason."""

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from keys_service.domain import (
    KEY_FORMAT_REASONS,
    KEY_LENGTH,
    KeyEnvironment,
    generate_key,
    parse_key,
)
from keys_service.domain.key_format import _ALPHABET, _compose
from servicekit.errors import Unauthenticated

environments = st.sampled_from(KeyEnvironment)
secrets_32 = st.binary(min_size=32, max_size=32)
keys = st.builds(lambda env, raw: _compose(env, raw).reveal(), environments, secrets_32)


def _reason(text: str) -> str:
    with pytest.raises(Unauthenticated) as info:
        parse_key(text)
    return info.value.reason


@given(environments, secrets_32)
def test_round_trip(env: KeyEnvironment, raw: bytes) -> None:
    text = _compose(env, raw).reveal()
    parsed = parse_key(text)
    assert parsed.reveal() == text
    assert parsed.environment is env
    assert len(text) == KEY_LENGTH
    assert text.startswith(f"rg_{env}_")
    assert parsed.display_prefix == text[: len(f"rg_{env}_") + 4]


def test_generated_keys_are_distinct_and_valid() -> None:
    texts = {generate_key(KeyEnvironment.TEST).reveal() for _ in range(200)}
    assert len(texts) == 200
    assert all(parse_key(t).environment is KeyEnvironment.TEST for t in texts)


def test_extreme_secrets_keep_fixed_width() -> None:
    assert parse_key(_compose(KeyEnvironment.LIVE, bytes(32)).reveal())
    assert parse_key(_compose(KeyEnvironment.LIVE, b"\xff" * 32).reveal())


@given(keys, st.data())
def test_any_single_character_change_is_rejected(text: str, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(
        st.sampled_from(_ALPHABET + "_-+/=. \n\x00é").filter(lambda c: c != text[index])
    )
    mutated = text[:index] + replacement + text[index + 1 :]
    assert _reason(mutated) in KEY_FORMAT_REASONS


@given(keys, st.data())
def test_insertions_and_deletions_are_rejected(text: str, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(text) - 1))
    assert _reason(text[:index] + text[index + 1 :]) in KEY_FORMAT_REASONS
    char = data.draw(st.sampled_from(_ALPHABET))
    assert _reason(text[:index] + char + text[index:]) in KEY_FORMAT_REASONS


@given(st.text(max_size=200))
def test_garbage_never_parses(text: str) -> None:
    assert _reason(text) in KEY_FORMAT_REASONS


@given(environments, st.text(alphabet=_ALPHABET, min_size=49, max_size=49))
def test_well_shaped_junk_parses_only_with_a_true_checksum(env: KeyEnvironment, tail: str) -> None:
    text = f"rg_{env}_{tail}"
    try:
        parse_key(text)
    except Unauthenticated as exc:
        assert exc.reason in {"KEY_CHECKSUM_MISMATCH", "KEY_ENCODING_INVALID"}
    else:  # only reachable with a 1-in-2**32 lucky checksum: then it must really be right
        crc = 0
        for char in tail[43:]:
            crc = crc * 62 + _ALPHABET.index(char)
        assert crc == zlib.crc32(text[:-6].encode())


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda t: "sk" + t[2:], "KEY_PREFIX_INVALID"),
        (lambda t: t.replace("rg_live_", "rg_prod_"), "KEY_ENVIRONMENT_INVALID"),
        (lambda t: t.replace("rg_live_", "rg_LIVE_"), "KEY_ENVIRONMENT_INVALID"),
        (lambda t: t + "\n", "KEY_LENGTH_INVALID"),
        (lambda t: " " + t, "KEY_PREFIX_INVALID"),
        (lambda t: t[:-1], "KEY_LENGTH_INVALID"),
        (lambda t: t[:20] + "-" + t[21:], "KEY_CHARSET_INVALID"),
        (lambda t: t[:8] + "z" + t[9:], "KEY_ENCODING_INVALID"),
        (lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), "KEY_CHECKSUM_MISMATCH"),
        (lambda t: t.replace("rg_live_", "rg_test_"), "KEY_CHECKSUM_MISMATCH"),
    ],
)
def test_each_defect_has_its_own_reason(mutate: object, reason: str) -> None:
    text = _compose(KeyEnvironment.LIVE, bytes(range(32))).reveal()
    assert callable(mutate)
    assert _reason(mutate(text)) == reason


def test_errors_and_reprs_never_contain_the_secret() -> None:
    key = generate_key(KeyEnvironment.LIVE)
    text = key.reveal()
    assert text not in repr(key) and text not in str(key) and text not in f"{key}"
    assert key.display_prefix in repr(key)
    with pytest.raises(Unauthenticated) as info:
        parse_key(text[:-1] + ("A" if text[-1] != "A" else "B"))
    rendered = f"{info.value} {info.value!r} {info.value.metadata}"
    assert text[8:-6] not in rendered
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(key)
