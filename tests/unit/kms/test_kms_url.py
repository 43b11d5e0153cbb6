"""``key_manager_from_url``: one settings string picks and configures a backend, strictly."""

from __future__ import annotations

from pathlib import Path

import pytest
from servicekit.errors import InvalidArgument
from servicekit.kms import (
    KMS_CONFIG_INVALID,
    AppRoleAuth,
    KubernetesAuth,
    LocalKeyring,
    MasterKey,
    TokenAuth,
    VaultTransit,
    key_manager_from_url,
)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    MasterKey.generate().write_file(tmp_path / "master.key")
    (tmp_path / "token").write_text("hvs.file-token\n")
    (tmp_path / "secret-id").write_text("secret-from-file")
    return tmp_path


def test_local(files: Path) -> None:
    manager = key_manager_from_url(
        f"local://{files}/keyring.json?master_key_file={files}/master.key&key=credentials"
    )
    assert isinstance(manager, LocalKeyring)
    assert "credentials" in repr(manager)
    direct = key_manager_from_url(f"local://{files}/k.json", master_key=MasterKey.generate())
    assert isinstance(direct, LocalKeyring)


def test_vault_variants(files: Path) -> None:
    token = key_manager_from_url(
        f"vault+http://127.0.0.1:8200/transit/credentials?auth=token&token_file={files}/token"
    )
    assert isinstance(token, VaultTransit)
    config = token._config
    assert (config.address, config.mount_point, config.key_name) == (
        "http://127.0.0.1:8200",
        "transit",
        "credentials",
    )
    assert config.auth == TokenAuth("hvs.file-token")

    approle = key_manager_from_url(
        "vault://vault.internal:8200/secrets/transit/creds?auth=approle&role_id=r1"
        f"&secret_id_file={files}/secret-id&ca_file=/etc/ca.pem&timeout=3&max_concurrency=4"
    )
    assert isinstance(approle, VaultTransit)
    config = approle._config
    assert (
        config.address == "https://vault.internal:8200" and config.mount_point == "secrets/transit"
    )
    assert config.auth == AppRoleAuth("r1", "secret-from-file")
    assert (config.ca_file, config.timeout, config.max_concurrency) == ("/etc/ca.pem", 3.0, 4)

    k8s = key_manager_from_url("vault://vault:8200/transit/creds?auth=kubernetes&role=svc")
    assert isinstance(k8s, VaultTransit)
    assert isinstance(k8s._config.auth, KubernetesAuth) and k8s._config.auth.role == "svc"

    given = key_manager_from_url("vault://vault:8200/transit/creds", vault_auth=TokenAuth("t"))
    assert isinstance(given, VaultTransit) and given._config.auth == TokenAuth("t")


@pytest.mark.parametrize(
    "url",
    [
        "file:///tmp/keyring.json",
        "local://relative/keyring.json?master_key_file=/x",
        "local:///tmp/keyring.json",  # no master key at all
        "local:///tmp/keyring.json?master_key_file=/x&masterkey=typo",
        "vault://vault:8200/credentials?auth=kubernetes&role=svc",  # no mount
        "vault://vault:8200/transit/creds",  # no auth
        "vault://vault:8200/transit/creds?auth=ldap",
        "vault://vault:8200/transit/creds?auth=approle&secret_id_file=/nonexistent",
        "vault://vault:8200/transit/creds?auth=token",
        "vault://vault:8200/transit/creds?auth=kubernetes&role=svc&timeout=0",
        "vault://vault:8200/transit/creds?auth=kubernetes&role=svc&max_concurrency=0",
        "vault://vault:8200/transit/creds?auth=kubernetes&role=a&role=b",
        "vault+http://vault:8200/transit/creds?auth=kubernetes&role=svc&ca_file=/ca.pem",
        "vault://vault:8200/transit/creds?auth=token&token=hvs.in-the-url",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        key_manager_from_url(url)
    assert caught.value.reason == KMS_CONFIG_INVALID
    assert "hvs.in-the-url" not in str(caught.value)
