"""Secrets as files: every secret setting can be read from ``RAILGUARD_<NAME>_FILE``."""

from __future__ import annotations

from pathlib import Path

import pytest
from servicekit.settings import SECRET_SETTINGS, load_settings


@pytest.mark.parametrize("name", [*SECRET_SETTINGS, "KEYS_DATABASE_URL"])
def test_each_secret_setting_reads_its_file(tmp_path: Path, name: str) -> None:
    secret = tmp_path / "value"
    secret.write_text(
        "postgresql+asyncpg://keys:s3cret@db/keys\n"
    )  # a trailing newline, as kubectl writes
    settings = load_settings("keys", {f"RAILGUARD_{name}_FILE": str(secret)})
    if name.endswith("DATABASE_URL"):
        assert settings.database_url == "postgresql+asyncpg://keys:s3cret@db/keys"
    elif name == "REDIS_URL":
        assert settings.redis_url == "postgresql+asyncpg://keys:s3cret@db/keys"
    elif name == "KMS_URL":
        assert settings.kms_url == "postgresql+asyncpg://keys:s3cret@db/keys"
    else:
        assert settings.get(name) == "postgresql+asyncpg://keys:s3cret@db/keys"


def test_both_the_variable_and_its_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p").write_text("1:abc")
    env = {"RAILGUARD_KEYS_PEPPERS": "1:xyz", "RAILGUARD_KEYS_PEPPERS_FILE": str(tmp_path / "p")}
    with pytest.raises(ValueError, match="not both"):
        load_settings("keys", env)


def test_an_unreadable_or_empty_file_fails_closed_without_echoing_content(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        load_settings("keys", {"RAILGUARD_REDIS_URL_FILE": str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        load_settings("keys", {"RAILGUARD_REDIS_URL_FILE": str(tmp_path / "empty")})


def test_non_secret_settings_have_no_file_form(tmp_path: Path) -> None:
    (tmp_path / "level").write_text("DEBUG")
    settings = load_settings("keys", {"RAILGUARD_LOG_LEVEL_FILE": str(tmp_path / "level")})
    assert settings.log_level == "INFO"
