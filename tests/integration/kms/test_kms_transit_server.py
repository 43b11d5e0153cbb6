"""The transit test server follows Vault's documented HTTP behaviour (reference §1, §5(a)),
independently of what Railguard's client happens to send."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from servicekit.kms import LocalKeyring, MasterKey
from servicekit.kms import local_keyring as local_internals
from testkit.vault_transit_server import (
    MISSING_CONTEXT,
    PERMISSION_DENIED,
    TOO_OLD,
    VaultTransitServer,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


CTX = b64(b"workspace/ws_1/credential/cred_1")


@pytest.fixture
def http(vault_server: VaultTransitServer) -> Iterator[httpx.Client]:
    headers = {"X-Vault-Token": vault_server.root_token}
    base = vault_server.address + "/v1"
    with httpx.Client(base_url=base, headers=headers, trust_env=False) as client:
        yield client


def post(http: httpx.Client, path: str, body: dict[str, Any], status: int = 200) -> Any:
    response = http.post(path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_token_is_required(vault_server: VaultTransitServer) -> None:
    with httpx.Client(base_url=vault_server.address + "/v1", trust_env=False) as anonymous:
        for headers in ({}, {"X-Vault-Token": "hvs.unknown"}):
            response = anonymous.get("/transit/keys/k", headers=headers)
            assert response.status_code == 403
            assert response.headers["content-type"] == "application/json"
            assert response.json() == {"errors": [PERMISSION_DENIED]}


def test_key_lifecycle(http: httpx.Client) -> None:
    missing = http.get("/transit/keys/k")
    assert (missing.status_code, missing.json()) == (404, {"errors": []})
    created = post(http, "/transit/keys/k", {"derived": True})
    assert created["data"]["derived"] is True and created["data"]["kdf"] == "hkdf_sha256"
    assert created["data"]["latest_version"] == 1 and created["data"]["type"] == "aes256-gcm96"
    again = post(http, "/transit/keys/k", {"derived": False})
    assert again["warnings"] == ["key k already existed"] and again["data"]["derived"] is True
    assert post(http, "/transit/keys/k/rotate", {})["data"]["latest_version"] == 2
    assert post(http, "/transit/keys/nope/rotate", {}, 400) == {"errors": ["key not found"]}
    assert post(http, "/transit/keys/x", {"type": "rsa-1"}, 400) == {
        "errors": ["unknown key type rsa-1"]
    }
    assert post(http, "/transit/keys/y", {"convergent_encryption": True}, 400) == {
        "errors": ["convergent encryption requires derivation to be enabled"]
    }
    assert http.get("/transit/keys/bad..name-").status_code == 404


def test_config_rules(http: httpx.Client) -> None:
    post(http, "/transit/keys/k", {"derived": True})
    post(http, "/transit/keys/k/rotate", {})
    forced = post(http, "/transit/keys/k/config", {"min_decryption_version": 0})
    assert forced["data"]["min_decryption_version"] == 1
    assert "forcing minimum to 1" in forced["warnings"][0]
    assert post(http, "/transit/keys/k/config", {"min_decryption_version": 3}, 400) == {
        "errors": ["cannot set min decryption version of 3, latest key version is 2"]
    }
    assert post(http, "/transit/keys/k/config", {"min_decryption_version": -1}, 400) == {
        "errors": ["min decryption version cannot be negative"]
    }
    both = {"min_decryption_version": 2, "min_encryption_version": 1}
    assert (
        "must be greater than or equal to"
        in post(http, "/transit/keys/k/config", both, 400)["errors"][0]
    )
    assert post(http, "/transit/keys/nope/config", {}, 400) == {
        "errors": ["no existing key named nope could be found"]
    }


def test_encrypt_decrypt_errors_follow_vault(http: httpx.Client) -> None:
    post(http, "/transit/keys/k", {"derived": True})
    assert post(http, "/transit/encrypt/k", {"plaintext": b64(b"x")}, 400) == {
        "errors": [MISSING_CONTEXT]
    }
    assert post(http, "/transit/encrypt/k", {"context": CTX}, 400) == {
        "errors": ["missing plaintext to encrypt"]
    }
    sealed = post(http, "/transit/encrypt/k", {"plaintext": b64(b"x"), "context": CTX})["data"]
    assert sealed["key_version"] == 1 and sealed["ciphertext"].startswith("vault:v1:")
    ciphertext = sealed["ciphertext"]
    cases = {
        "nope": "invalid ciphertext: no prefix",
        "vault:v1": "invalid ciphertext: wrong number of fields",
        "vault:vX:abc": "invalid ciphertext: version number could not be decoded",
        "vault:v9:" + ciphertext[9:]: "invalid ciphertext: version is too new",
        "vault:v1:***": "invalid ciphertext: could not decode base64",
        "vault:v1:" + b64(b"short"): "invalid ciphertext length",
    }
    for bad, message in cases.items():
        body = {"ciphertext": bad, "context": CTX}
        assert post(http, "/transit/decrypt/k", body, 400) == {"errors": [message]}, bad
    wrong = {"ciphertext": ciphertext, "context": b64(b"other")}
    assert post(http, "/transit/decrypt/k", wrong, 400) == {
        "errors": ["cipher: message authentication failed"]
    }
    post(http, "/transit/keys/k/rotate", {})
    post(http, "/transit/keys/k/config", {"min_decryption_version": 2})
    body = {"ciphertext": ciphertext, "context": CTX}
    assert post(http, "/transit/decrypt/k", body, 400) == {"errors": [TOO_OLD]}
    assert post(http, "/transit/rewrap/k", body, 400) == {"errors": [TOO_OLD]}


def test_batch_status_codes(http: httpx.Client) -> None:
    post(http, "/transit/keys/k", {"derived": True})
    good = {"plaintext": b64(b"a"), "context": CTX, "reference": "r1"}
    bad = {"plaintext": "%%%", "context": CTX, "reference": "r2"}
    failed = post(http, "/transit/encrypt/k", {"plaintext": None, "batch_input": [good, bad]}, 400)
    assert "errors" not in failed
    first, second = failed["data"]["batch_results"]
    assert first["reference"] == "r1" and first["ciphertext"].startswith("vault:v1:")
    assert second == {"error": "illegal base64 data at input byte 0", "reference": "r2"}
    partial = {"batch_input": [good, bad], "partial_failure_response_code": 207}
    assert http.post("/transit/encrypt/k", json=partial).status_code == 207
    mixed = {"batch_input": [good, {"plaintext": b64(b"b")}]}
    assert post(http, "/transit/encrypt/k", mixed, 400) == {
        "errors": ["context should be set either in all the request blocks or in none"]
    }
    wrong = {"ciphertext": first["ciphertext"], "context": b64(b"other"), "reference": "w"}
    right = {"ciphertext": first["ciphertext"], "context": CTX}
    decrypted = post(
        http, "/transit/decrypt/k", {"ciphertext": None, "batch_input": [right, wrong]}, 400
    )
    assert decrypted["data"]["batch_results"][0]["plaintext"] == b64(b"a")
    assert decrypted["data"]["batch_results"][1]["error"] == "cipher: message authentication failed"
    # Rewrap batches answer 200 even when an item fails.
    rewrapped = post(http, "/transit/rewrap/k", {"ciphertext": None, "batch_input": [right, wrong]})
    assert rewrapped["data"]["batch_results"][1]["error"] == "cipher: message authentication failed"


def test_upsert_needs_create(vault_server: VaultTransitServer, http: httpx.Client) -> None:
    update_only = vault_server.create_token({"transit/encrypt/*": ["update"]})
    body = {"plaintext": b64(b"x"), "context": CTX}
    response = http.post("/transit/encrypt/new", json=body, headers={"X-Vault-Token": update_only})
    assert (response.status_code, response.json()) == (
        400,
        {"errors": ["encryption key not found"]},
    )
    none = vault_server.create_token({"transit/decrypt/*": ["update"]})
    assert (
        http.post("/transit/encrypt/new", json=body, headers={"X-Vault-Token": none}).status_code
        == 403
    )
    created = post(http, "/transit/encrypt/new", body)  # root has "create": Vault upserts
    assert created["data"]["key_version"] == 1
    assert http.get("/transit/keys/new").json()["data"]["derived"] is True


def test_sealed_and_health(vault_server: VaultTransitServer, http: httpx.Client) -> None:
    assert http.get("/sys/health").json()["sealed"] is False
    vault_server.sealed = True
    health = http.get("/sys/health")
    assert health.status_code == 503 and health.json()["sealed"] is True
    response = http.get("/transit/keys/k")
    assert (response.status_code, response.json()) == (503, {"errors": ["Vault is sealed"]})


def test_logins(vault_server: VaultTransitServer, http: httpx.Client) -> None:
    vault_server.add_approle("role-1", "secret-1", {"transit/keys/*": ["read"]})
    ok = post(http, "/auth/approle/login", {"role_id": "role-1", "secret_id": "secret-1"})
    token = ok["auth"]["client_token"]
    assert http.get("/transit/keys/k", headers={"X-Vault-Token": token}).status_code == 404
    assert post(http, "/auth/approle/login", {"role_id": "role-1", "secret_id": "x"}, 400) == {
        "errors": ["invalid role or secret ID"]
    }
    vault_server.add_kubernetes_role("svc", "jwt-1", {})
    assert post(http, "/auth/kubernetes/login", {"role": "svc", "jwt": "jwt-1"})["auth"][
        "client_token"
    ]
    assert post(http, "/auth/kubernetes/login", {"role": "svc", "jwt": "jwt-2"}, 403) == {
        "errors": [PERMISSION_DENIED]
    }


async def test_local_keyring_reads_vault_ciphertext(
    vault_server: VaultTransitServer, http: httpx.Client, tmp_path: Path
) -> None:
    """Same derivation and format: with the same key material, each backend opens the other's."""
    post(http, "/transit/keys/k", {"derived": True})
    body = {"plaintext": b64(b"interop"), "context": CTX}
    ciphertext = post(http, "/transit/encrypt/k", body)["data"]["ciphertext"]
    material = vault_server._keys["k"].versions[1][0]
    master = MasterKey.generate()
    state = local_internals._State(
        "k", "aes256-gcm96", True, 1, {1: local_internals._Version(material, 0)}
    )
    path = tmp_path / "keyring.json"
    path.write_bytes(local_internals._seal_file(state, master))
    path.chmod(0o600)
    keyring = LocalKeyring(path, master, key_name="k")
    context = "workspace/ws_1/credential/cred_1"
    assert await keyring.decrypt(ciphertext, context) == b"interop"
    mine = await keyring.encrypt(b"back", context)
    decrypted = post(http, "/transit/decrypt/k", {"ciphertext": mine, "context": CTX})
    assert decrypted["data"]["plaintext"] == b64(b"back")
