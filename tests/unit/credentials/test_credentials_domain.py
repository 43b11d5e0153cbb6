"""The pure rules: provider formats, value checks, the masking rule, tokens and their hash."""

from __future__ import annotations

import pickle

import pytest
from credentials_service.domain import (
    HIDDEN,
    MAX_VALUE_BYTES,
    PROVIDERS,
    SecretValue,
    TokenHasher,
    check_value,
    mask,
    new_token,
    parse_provider,
)
from hypothesis import given
from hypothesis import strategies as st
from servicekit.errors import InvalidArgument

VALID = {
    "openai": "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDxyz9",
    "anthropic": "sk-ant-api03-" + "A1b2C3d4" * 5,
    "azure_openai": "0123456789abcdef0123456789abcdef",
    "google": "AIza" + "B" * 35,
    "aws": "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "generic": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
}


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_every_provider_accepts_its_format(provider: str) -> None:
    value = check_value(PROVIDERS[provider], VALID[provider])
    assert value.reveal() == VALID[provider]


def test_known_formats_are_enforced_and_trimmed() -> None:
    openai = parse_provider("openai")
    assert check_value(openai, "  " + VALID["openai"] + "\n").reveal() == VALID["openai"]
    for bad in ("sk-short", "pk-" + "a" * 30, VALID["anthropic"].replace("sk-ant", "sk ant")):
        with pytest.raises(InvalidArgument) as err:
            check_value(openai, bad)
        assert err.value.reason == "CREDENTIAL_FORMAT_MISMATCH"
        assert bad not in err.value.message


def test_generic_values_are_kept_byte_for_byte() -> None:
    assert check_value(parse_provider("generic"), " x\n").reveal() == " x\n"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "CREDENTIAL_VALUE_EMPTY"),
        (" \n\t", "CREDENTIAL_VALUE_EMPTY"),
        ("a" * (MAX_VALUE_BYTES + 1), "CREDENTIAL_VALUE_TOO_LARGE"),
        ("é" * (MAX_VALUE_BYTES // 2 + 1), "CREDENTIAL_VALUE_TOO_LARGE"),
        ("ab\x07cd", "CREDENTIAL_VALUE_INVALID"),
    ],
)
def test_bad_values(value: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        check_value(parse_provider("generic"), value)
    assert err.value.reason == reason
    assert [v.field for v in err.value.violations] == ["credential.value"]


def test_exactly_8_kib_is_accepted() -> None:
    assert len(check_value(parse_provider("generic"), "a" * MAX_VALUE_BYTES)) == MAX_VALUE_BYTES


def test_unknown_provider() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_provider("OpenAI")
    assert err.value.reason == "UNKNOWN_PROVIDER"


@pytest.mark.parametrize(
    ("provider", "value", "masked"),
    [
        ("openai", "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDxyz9", "sk-proj-abc...xyz9"),
        ("openai", "sk-" + "Q" * 20 + "wxyz", "sk-QQQ...wxyz"),
        ("anthropic", "sk-ant-api03-" + "k" * 40 + "tail", "sk-ant-api03-kkk...tail"),
        ("google", "AIza" + "B" * 31 + "9876", "AIzaBBB...9876"),
        ("generic", "x" * 20 + "abcd", "xxx...abcd"),
        ("generic", "p" * 16 + "1234", "...1234"),
        ("generic", "p" * 12 + "zz", HIDDEN + "zz"),
        ("generic", "hunter2", HIDDEN),
        ("generic", "a", HIDDEN),
        ("generic", "x" * 30 + "\n", HIDDEN),
        # on a generic value, separators are no prefix: "my-team-" is never shown whole
        ("generic", "my-team-password-is-very-long", "my-...long"),
    ],
)
def test_masking_rule(provider: str, value: str, masked: str) -> None:
    assert mask(PROVIDERS[provider], SecretValue(value)) == masked


@given(st.text(min_size=1, max_size=200))
def test_a_mask_never_reveals_more_than_seven_characters_of_the_secret_body(value: str) -> None:
    masked = mask(PROVIDERS["generic"], SecretValue(value))
    shown = masked.replace("...", "").replace(HIDDEN, "")
    assert len(shown) <= 7
    assert len(shown) <= len(value) // 3
    if len(value) < 12:
        assert masked == HIDDEN


def test_secret_value_never_shows_itself() -> None:
    secret = SecretValue("sk-very-secret")
    assert "very" not in repr(secret) and "very" not in str(secret) and "very" not in f"{secret}"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_tokens_are_256_bit_and_hash_under_the_pepper() -> None:
    tokens = {new_token().reveal() for _ in range(100)}
    assert len(tokens) == 100
    token = next(iter(tokens))
    assert token.startswith("rgwh_") and len(token) == 5 + 43
    hasher = TokenHasher(b"p" * 32)
    digest = hasher.lookup_digest(token)
    assert digest is not None and len(digest) == 32
    assert digest == hasher.digest(SecretValue(token))
    assert TokenHasher(b"q" * 32).lookup_digest(token) != digest
    assert hasher.lookup_digest("rgwh_short") is None
    assert hasher.lookup_digest(token + "x") is None
    assert "p" * 32 not in repr(hasher)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TokenHasher(b"short")


def test_a_soft_deletable_record_must_say_how_it_is_sealed_and_purged() -> None:
    from credentials_service.domain.soft_delete import SoftDeletable

    class NoPurge(SoftDeletable):
        @property
        def context(self) -> str:
            return "c"

        @property
        def sealed(self) -> str | None:
            return None

    with pytest.raises(TypeError, match="abstract"):
        NoPurge()  # type: ignore[abstract]
