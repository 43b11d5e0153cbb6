"""VaultTransit against the transit test server: outages, refusals and logins fail closed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from servicekit.errors import NotFound, PermissionDenied, Unavailable
from servicekit.kms import (
    KMS_KEY_NOT_FOUND,
    KMS_PERMISSION_DENIED,
    KMS_UNAVAILABLE,
    AppRoleAuth,
    KubernetesAuth,
    TokenAuth,
    VaultAuth,
    VaultTransit,
    VaultTransitConfig,
)
from testkit.vault_transit_server import VaultTransitServer

from .conftest import service_policy

KEY = "credentials"
CTX = "workspace/ws_1/credential/cred_1"
SECRET = b"sk-live-0123456789abcdef-do-not-leak"


@pytest.fixture
async def server(vault_server: VaultTransitServer) -> VaultTransitServer:
    vault_server.create_key(KEY)
    return vault_server


def connect(server: VaultTransitServer, auth: VaultAuth, key: str = KEY) -> VaultTransit:
    return VaultTransit(VaultTransitConfig(server.address, auth, key, timeout=2))


def service_token(server: VaultTransitServer) -> TokenAuth:
    return TokenAuth(server.create_token(service_policy(KEY)))


async def test_server_down_is_unavailable_then_recovers(server: VaultTransitServer) -> None:
    km = connect(server, service_token(server))
    ciphertext = await km.encrypt(SECRET, CTX)
    server.down()
    for call in (km.encrypt(SECRET, CTX), km.decrypt(ciphertext, CTX), km.rotate(), km.key_info()):
        with pytest.raises(Unavailable) as caught:
            await call
        assert caught.value.reason == KMS_UNAVAILABLE
    server.up()
    assert await km.decrypt(ciphertext, CTX) == SECRET
    await km.close()


async def test_down_before_first_use_is_unavailable(server: VaultTransitServer) -> None:
    km = connect(server, service_token(server))
    server.down()
    with pytest.raises(Unavailable):
        await km.encrypt(SECRET, CTX)
    await km.close()


async def test_sealed_is_unavailable(server: VaultTransitServer) -> None:
    km = connect(server, service_token(server))
    ciphertext = await km.encrypt(SECRET, CTX)
    server.sealed = True
    for call in (km.decrypt(ciphertext, CTX), km.encrypt_batch([(SECRET, CTX)]), km.self_check()):
        with pytest.raises(Unavailable) as caught:
            await call
        assert caught.value.reason == KMS_UNAVAILABLE
    server.sealed = False
    assert await km.decrypt(ciphertext, CTX) == SECRET
    await km.close()


async def test_bad_token_and_denial_are_permission_denied(server: VaultTransitServer) -> None:
    wrong = connect(server, TokenAuth("hvs.not-a-real-token"))
    with pytest.raises(PermissionDenied) as caught:
        await wrong.encrypt(SECRET, CTX)
    assert caught.value.reason == KMS_PERMISSION_DENIED
    await wrong.close()

    km = connect(server, service_token(server))
    ciphertext = await km.encrypt(SECRET, CTX)
    server.deny = True
    with pytest.raises(PermissionDenied):
        await km.decrypt(ciphertext, CTX)
    server.deny = False
    assert await km.decrypt(ciphertext, CTX) == SECRET
    await km.close()


async def test_policy_is_enforced_per_path(server: VaultTransitServer) -> None:
    policy = service_policy(KEY)
    del policy[f"transit/rewrap/{KEY}"]
    km = connect(server, TokenAuth(server.create_token(policy)))
    ciphertext = await km.encrypt(SECRET, CTX)
    with pytest.raises(PermissionDenied):
        await km.rewrap(ciphertext, CTX)
    await km.close()


async def test_missing_key_is_not_found(server: VaultTransitServer) -> None:
    km = connect(server, TokenAuth(server.root_token), key="no-such-key")
    for call in (km.self_check(), km.encrypt(SECRET, CTX)):
        with pytest.raises(NotFound) as caught:
            await call
        assert caught.value.reason == KMS_KEY_NOT_FOUND
    await km.close()


async def test_approle_login_and_relogin(server: VaultTransitServer) -> None:
    server.add_approle("role-1", "secret-id-1", service_policy(KEY))
    km = connect(server, AppRoleAuth("role-1", "secret-id-1"))
    ciphertext = await km.encrypt(SECRET, CTX)
    assert len(server.login_tokens) == 1
    # The token expires (or is revoked): one fresh login, transparently.
    server.revoke_token(server.login_tokens[0])
    assert await km.decrypt(ciphertext, CTX) == SECRET
    assert len(server.login_tokens) == 2
    await km.close()


async def test_approle_wrong_secret_is_permission_denied(server: VaultTransitServer) -> None:
    server.add_approle("role-1", "secret-id-1", service_policy(KEY))
    km = connect(server, AppRoleAuth("role-1", "wrong-secret-id"))
    with pytest.raises(PermissionDenied) as caught:
        await km.encrypt(SECRET, CTX)
    assert "wrong-secret-id" not in f"{caught.value} {caught.value!r}"
    assert server.login_tokens == []
    assert "wrong-secret-id" not in repr(km) and "secret" not in repr(AppRoleAuth("r", "s3cr3t"))
    await km.close()


async def test_kubernetes_login(server: VaultTransitServer, tmp_path: Path) -> None:
    jwt_file = tmp_path / "token"
    jwt_file.write_text("eyJhbGciOiJSUzI1NiJ9.service-account.sig\n")
    server.add_kubernetes_role(
        "credentials", "eyJhbGciOiJSUzI1NiJ9.service-account.sig", {**service_policy(KEY)}
    )
    km = connect(server, KubernetesAuth("credentials", str(jwt_file)))
    assert await km.decrypt(await km.encrypt(SECRET, CTX), CTX) == SECRET
    await km.close()

    jwt_file.write_text("eyJhbGciOiJSUzI1NiJ9.another-account.sig")
    refused = connect(server, KubernetesAuth("credentials", str(jwt_file)))
    with pytest.raises(PermissionDenied):
        await refused.encrypt(SECRET, CTX)
    await refused.close()

    unreadable = connect(server, KubernetesAuth("credentials", str(tmp_path / "missing")))
    with pytest.raises(Unavailable):
        await unreadable.encrypt(SECRET, CTX)
    await unreadable.close()


async def test_concurrent_calls_are_bounded_and_correct(server: VaultTransitServer) -> None:
    km = VaultTransit(
        VaultTransitConfig(server.address, service_token(server), KEY, max_concurrency=3)
    )
    plaintexts = [f"secret-{i}".encode() for i in range(40)]
    ciphertexts = await asyncio.gather(*(km.encrypt(p, CTX) for p in plaintexts))
    assert await asyncio.gather(*(km.decrypt(c, CTX) for c in ciphertexts)) == plaintexts
    await km.close()


def test_reprs_hide_secrets() -> None:
    config = VaultTransitConfig("https://vault:8200", AppRoleAuth("role", "s3cr3t-id"), KEY)
    assert "s3cr3t-id" not in repr(config)
    assert "hvs.t0ken" not in repr(TokenAuth("hvs.t0ken"))
