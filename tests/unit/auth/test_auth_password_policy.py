from __future__ import annotations

import unicodedata

import pytest
from auth_service.adapters.common_passwords import CommonPasswords
from auth_service.domain import check_password
from hypothesis import given
from hypothesis import strategies as st
from servicekit.errors import InvalidArgument

EMAIL = "alice.smith@example.com"
_MESSAGES = {
    "password: must be at least 12 characters",
    "password: must be at most 128 characters",
    "password: is too common; choose a less predictable password",
    "password: must not contain your email address",
}


def _reason(raw: str, blocklist: CommonPasswords, email: str = EMAIL) -> str:
    with pytest.raises(InvalidArgument) as err:
        check_password(raw, email, blocklist)
    assert err.value.violations[0].field == "password"
    return err.value.reason


def test_twelve_characters_pass_eleven_do_not(blocklist: CommonPasswords) -> None:
    assert check_password("zq8-vbn.wle3", EMAIL, blocklist) == "zq8-vbn.wle3"
    assert _reason("zq8-vbn.wle", blocklist) == "PASSWORD_TOO_SHORT"


def test_length_is_counted_in_characters_not_bytes(blocklist: CommonPasswords) -> None:
    emoji = "🦊🐙🦉🐝🦔🐢🦑🐬🦜🦩🐞🦀"  # 12 characters, 48 bytes
    assert check_password(emoji, EMAIL, blocklist) == emoji
    assert _reason(emoji[:-1], blocklist) == "PASSWORD_TOO_SHORT"


def test_128_characters_pass_129_do_not(blocklist: CommonPasswords) -> None:
    base = "kv7#Lp2!wQz9"
    long = (base * 11)[:128]
    assert check_password(long, EMAIL, blocklist) == long
    assert _reason(long + "x", blocklist) == "PASSWORD_TOO_LONG"
    assert _reason("x" * 1_000_000, blocklist) == "PASSWORD_TOO_LONG"


def test_length_is_counted_after_nfkc(blocklist: CommonPasswords) -> None:
    # "ﬃ" (one character) becomes "ffi" (three) under NFKC.
    assert check_password("ﬃﬃﬃzq8-", EMAIL, blocklist) == "ffiffiffizq8-"
    # A decomposed "é" (two code points) composes to one under NFKC: 11 characters, too short.
    decomposed = "zq8-vbn.wl" + "e\u0301"
    assert len(decomposed) == 12
    assert _reason(decomposed, blocklist) == "PASSWORD_TOO_SHORT"


def test_nfc_and_nfd_forms_normalise_to_the_same_password(blocklist: CommonPasswords) -> None:
    word = "Grüße-aus-Köln-2031"
    nfc = check_password(unicodedata.normalize("NFC", word), EMAIL, blocklist)
    nfd = check_password(unicodedata.normalize("NFD", word), EMAIL, blocklist)
    assert nfc == nfd


def test_no_composition_rules(blocklist: CommonPasswords) -> None:
    assert check_password("correct horse battery staple", EMAIL, blocklist)


@pytest.mark.parametrize(
    "common",
    [
        "password1234",
        "PASSWORD1234",
        "Password1234",
        "qwerty123456",
        "1qaz2wsx3edc",
        "ｐａｓｓｗｏｒｄ１２３４",
    ],
)
def test_common_passwords_are_refused_case_insensitively(
    common: str, blocklist: CommonPasswords
) -> None:
    assert _reason(common, blocklist) == "PASSWORD_TOO_COMMON"


def test_the_bundled_list_has_thousands_of_entries(blocklist: CommonPasswords) -> None:
    assert len(blocklist) > 5000
    assert all(len(entry) >= 12 for entry in blocklist)


@pytest.mark.parametrize(
    "password",
    [
        "alice.smith@example.com",
        "ALICE.SMITH@EXAMPLE.COM!",
        "my-alice.smith-secret",
        "xx alice.smith xx",
    ],
)
def test_the_email_or_its_local_part_is_refused(password: str, blocklist: CommonPasswords) -> None:
    assert _reason(password, blocklist) == "PASSWORD_CONTAINS_EMAIL"


def test_a_very_short_local_part_is_only_refused_whole(blocklist: CommonPasswords) -> None:
    assert check_password("alpine meadow sunrise", "al@example.com", blocklist)


@given(st.text(max_size=200))
def test_any_input_is_accepted_or_refused_without_echoing_it(raw: str) -> None:
    try:
        result = check_password(raw, EMAIL, frozenset())
    except InvalidArgument as err:
        assert err.message in _MESSAGES  # fixed texts: the input is never echoed
    else:
        assert 12 <= len(result) <= 128
        assert result == unicodedata.normalize("NFKC", raw)


def test_the_blocklist_matches_whole_entries_only(blocklist: CommonPasswords) -> None:
    assert "password1234" in blocklist
    # a substring of an entry, two entries joined by a newline, and the empty string are not
    assert "password123" not in blocklist
    assert "password1234\nqwerty123456" not in blocklist
    assert "" not in blocklist
    assert all(entry in blocklist for entry in list(blocklist)[:100])
