"""Every RPC through a real server: happy and unhappy paths, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from railguard.auth.v1 import auth_service_pb2 as pb
from servicekit.db import dispose_engine
from sqlalchemy import text

from .conftest import AuthServer, as_token, as_user, error_info

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery staple"


async def _fails(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return error_info(err.value)


async def _sign_up(server: AuthServer, email: str = EMAIL) -> pb.User:
    return await server.stub().SignUp(
        pb.SignUpRequest(email=email, password=PASSWORD, display_name="Alice")
    )


async def _login(server: AuthServer, email: str = EMAIL) -> tuple[pb.TokenPair, dict[str, Any]]:
    tokens = (await server.stub().Login(pb.LoginRequest(email=email, password=PASSWORD))).tokens
    return tokens, jwt.decode(tokens.access_token, options={"verify_signature": False})


def _sqlite_bytes(database_url: str) -> bytes:
    """The SQLite file and its write-ahead log, as raw bytes."""
    path = Path(database_url.split(":///", 1)[1])
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def _engine_execute(server: AuthServer, sql: str, **params: str) -> list[Any]:
    from servicekit import create_engine

    engine = create_engine(server.settings.database_url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        await dispose_engine(engine)


# ---- SignUp / GetCurrentUser / LookupUser ------------------------------------------------------


async def test_sign_up_then_get_current_user(auth_server: AuthServer) -> None:
    user = await auth_server.stub().SignUp(
        pb.SignUpRequest(email="Alice@Example.com", password=PASSWORD, display_name="Alice")
    )
    assert user.email == EMAIL and user.name == f"users/{user.id}"
    me = await auth_server.stub().GetCurrentUser(
        pb.GetCurrentUserRequest(), metadata=as_user(user.id)
    )
    assert me.email == EMAIL and me.display_name == "Alice"


@pytest.mark.parametrize(
    ("email", "password", "reason"),
    [
        ("nope", PASSWORD, "INVALID_EMAIL"),
        (EMAIL, "short", "PASSWORD_TOO_SHORT"),
        (EMAIL, "x" * 129, "PASSWORD_TOO_LONG"),
        (EMAIL, "password1234", "PASSWORD_TOO_COMMON"),
        (EMAIL, "alice@example.com is me", "PASSWORD_CONTAINS_EMAIL"),
    ],
)
async def test_sign_up_refusals(
    auth_server: AuthServer, email: str, password: str, reason: str
) -> None:
    code, got, message = await _fails(
        auth_server.stub().SignUp(pb.SignUpRequest(email=email, password=password))
    )
    assert (code, got) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
    assert password not in message or len(password) < 4


async def test_sign_up_with_a_taken_email_answers_like_a_new_one(auth_server: AuthServer) -> None:
    # Was ALREADY_EXISTS / EMAIL_TAKEN; issue 13: the answer must not reveal who is registered.
    first = await _sign_up(auth_server)
    second = await _sign_up(auth_server, EMAIL.upper())
    assert second.email == first.email and second.id != first.id
    assert second.ListFields()[0][0].name == first.ListFields()[0][0].name
    assert not second.email_verified and not first.email_verified


async def test_get_current_user_needs_a_user(auth_server: AuthServer) -> None:
    code, reason, _ = await _fails(auth_server.stub().GetCurrentUser(pb.GetCurrentUserRequest()))
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
    code, reason, _ = await _fails(
        auth_server.stub().GetCurrentUser(pb.GetCurrentUserRequest(), metadata=as_user("ghost"))
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")


async def test_lookup_user(auth_server: AuthServer) -> None:
    user = await _sign_up(auth_server)
    stub = auth_server.stub("workspaces")
    assert (await stub.LookupUser(pb.LookupUserRequest(email="ALICE@example.com"))).id == user.id
    assert (await stub.LookupUser(pb.LookupUserRequest(user_id=user.id))).email == EMAIL
    code, reason, _ = await _fails(stub.LookupUser(pb.LookupUserRequest(email="x@example.com")))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")
    for bad in (pb.LookupUserRequest(), pb.LookupUserRequest(email=EMAIL, user_id=user.id)):
        code, _, _ = await _fails(stub.LookupUser(bad))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, reason, _ = await _fails(
        auth_server.stub("edge").LookupUser(pb.LookupUserRequest(email=EMAIL))
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "CALLER_NOT_ALLOWED")


# ---- Login ------------------------------------------------------------------------------------


async def test_login_issues_a_verifiable_access_token(auth_server: AuthServer) -> None:
    user = await _sign_up(auth_server)
    tokens, _ = await _login(auth_server)
    assert tokens.token_type == "Bearer" and tokens.expires_in == 600
    assert tokens.refresh_token.startswith("rgr_") and tokens.refresh_expires_in == 14 * 86400
    jwks = json.loads((await auth_server.stub().GetJwks(pb.GetJwksRequest())).jwks_json)
    keys = {k["kid"]: jwt.PyJWK(k) for k in jwks["keys"]}
    header = jwt.get_unverified_header(tokens.access_token)
    assert header["typ"] == "at+jwt" and header["alg"] == "EdDSA"
    claims = jwt.decode(
        tokens.access_token,
        keys[header["kid"]],
        algorithms=["EdDSA"],
        issuer=auth_server.settings.issuer,
        audience=auth_server.settings.audience,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid"]},
    )
    assert claims["sub"] == user.id and claims["aal"] == "aal1" and claims["amr"] == ["pwd"]
    assert claims["exp"] - claims["iat"] == 600 and "auth_time" in claims

    # forged: alg none, and a valid signature under a key id the JWKS does not know
    none_token = jwt.encode(
        claims, None, algorithm="none", headers={"kid": header["kid"], "typ": "at+jwt"}
    )
    with pytest.raises(jwt.InvalidTokenError):
        jwt.decode(none_token, keys[header["kid"]], algorithms=["EdDSA"], audience=claims["aud"])
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forged = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "evil"}
    )
    assert jwt.get_unverified_header(forged)["kid"] not in keys
    with pytest.raises(jwt.InvalidSignatureError):  # even if a verifier wrongly picked the real key
        jwt.decode(forged, keys[header["kid"]], algorithms=["EdDSA"], audience=claims["aud"])


async def test_unknown_email_wrong_password_and_deleted_user_look_identical(
    auth_server: AuthServer,
) -> None:
    user = await _sign_up(auth_server)
    stub = auth_server.stub()
    unknown = await _fails(stub.Login(pb.LoginRequest(email="bob@example.com", password=PASSWORD)))
    wrong = await _fails(stub.Login(pb.LoginRequest(email=EMAIL, password=PASSWORD + "!")))
    await _engine_execute(
        auth_server, "UPDATE users SET deleted_at = created_at WHERE id = :id", id=user.id
    )
    deleted = await _fails(stub.Login(pb.LoginRequest(email=EMAIL, password=PASSWORD)))
    assert unknown == wrong == deleted
    assert unknown[:2] == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")


async def test_stored_password_is_an_argon2id_phc_string(auth_server: AuthServer) -> None:
    await _sign_up(auth_server)
    await _sign_up(auth_server, "bob@example.com")
    hashes = [
        row[0] for row in await _engine_execute(auth_server, "SELECT password_hash FROM users")
    ]
    assert all(h.startswith("$argon2id$v=19$m=19456,t=2,p=1$") for h in hashes)
    assert len(set(hashes)) == 2


# ---- RefreshToken -----------------------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_family(auth_server: AuthServer) -> None:
    await _sign_up(auth_server)
    stub = auth_server.stub()
    first, _ = await _login(auth_server)
    second = (
        await stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=first.refresh_token))
    ).tokens
    third = (
        await stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=second.refresh_token))
    ).tokens
    assert len({first.refresh_token, second.refresh_token, third.refresh_token}) == 3
    # the grandparent is reused: the family dies, the newest token too
    code, reason, _ = await _fails(
        stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=first.refresh_token))
    )
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_REFRESH_TOKEN")
    code, _, _ = await _fails(
        stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=third.refresh_token))
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_refresh_refuses_junk(auth_server: AuthServer) -> None:
    code, reason, _ = await _fails(
        auth_server.stub().RefreshToken(pb.RefreshTokenRequest(refresh_token="nope"))
    )
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_REFRESH_TOKEN")


async def test_concurrent_refreshes_never_fork_nor_fail(auth_server: AuthServer) -> None:
    await _sign_up(auth_server)
    tokens, claims = await _login(auth_server)
    stubs = [auth_server.stub() for _ in range(6)]
    results = await asyncio.gather(
        *(
            s.RefreshToken(pb.RefreshTokenRequest(refresh_token=tokens.refresh_token))
            for s in stubs
        ),
        return_exceptions=True,
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    children = {r.tokens.refresh_token for r in results if isinstance(r, pb.RefreshTokenResponse)}
    assert len(children) == 1
    live = await _engine_execute(
        auth_server,
        "SELECT count(*) FROM refresh_tokens WHERE session_id = :sid AND rotated_at IS NULL",
        sid=claims["sid"],
    )
    assert live[0][0] == 1
    child = children.pop()
    assert await stubs[0].RefreshToken(pb.RefreshTokenRequest(refresh_token=child))


# ---- Logout / ListSessions / RevokeSession ----------------------------------------------------


async def test_logout(auth_server: AuthServer) -> None:
    user = await _sign_up(auth_server)
    tokens, claims = await _login(auth_server)
    stub = auth_server.stub()
    await stub.Logout(pb.LogoutRequest(), metadata=as_user(user.id, claims["sid"]))
    code, _, _ = await _fails(
        stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=tokens.refresh_token))
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code, reason, _ = await _fails(
        stub.Logout(pb.LogoutRequest(), metadata=as_user("mallory", claims["sid"]))
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "SESSION_NOT_FOUND")
    code, _, _ = await _fails(stub.Logout(pb.LogoutRequest()))
    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_list_and_revoke_sessions(auth_server: AuthServer) -> None:
    user = await _sign_up(auth_server)
    other = await _sign_up(auth_server, "bob@example.com")
    _, mine = await _login(auth_server)
    laptop, laptop_claims = await _login(auth_server)
    _, bobs = await _login(auth_server, "bob@example.com")
    stub = auth_server.stub()
    me = as_user(user.id, mine["sid"])
    page = await stub.ListSessions(pb.ListSessionsRequest(page_size=1), metadata=me)
    rest = await stub.ListSessions(
        pb.ListSessionsRequest(page_size=1, page_token=page.next_page_token), metadata=me
    )
    sessions = [*page.sessions, *rest.sessions]
    assert rest.next_page_token == ""
    assert {s.name for s in sessions} == {
        f"users/me/sessions/{mine['sid']}",
        f"users/me/sessions/{laptop_claims['sid']}",
    }
    assert [s.current for s in sessions if s.name.endswith(mine["sid"])] == [True]

    code, reason, _ = await _fails(
        stub.RevokeSession(
            pb.RevokeSessionRequest(name=f"users/me/sessions/{bobs['sid']}"), metadata=me
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "SESSION_NOT_FOUND")
    code, _, _ = await _fails(
        stub.RevokeSession(pb.RevokeSessionRequest(name="sessions/x"), metadata=me)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _, _ = await _fails(
        stub.ListSessions(pb.ListSessionsRequest(page_token="garbage"), metadata=me)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT

    await stub.RevokeSession(
        pb.RevokeSessionRequest(name=f"users/me/sessions/{laptop_claims['sid']}"), metadata=me
    )
    code, _, _ = await _fails(
        stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=laptop.refresh_token))
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    left = await stub.ListSessions(pb.ListSessionsRequest(), metadata=me)
    assert [s.name for s in left.sessions] == [f"users/me/sessions/{mine['sid']}"]
    bob_view = await stub.ListSessions(
        pb.ListSessionsRequest(), metadata=as_user(other.id, bobs["sid"])
    )
    assert len(bob_view.sessions) == 1


# ---- ChangePassword ---------------------------------------------------------------------------


async def test_change_password(auth_server: AuthServer) -> None:
    await _sign_up(auth_server)
    here, here_claims = await _login(auth_server)
    there, _ = await _login(auth_server)
    stub = auth_server.stub()
    me = as_token(here_claims)
    new = "an entirely different phrase"
    code, reason, _ = await _fails(
        stub.ChangePassword(
            pb.ChangePasswordRequest(current_password="wrong one here", new_password=new),
            metadata=me,
        )
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CURRENT_PASSWORD")
    code, reason, _ = await _fails(
        stub.ChangePassword(
            pb.ChangePasswordRequest(current_password=PASSWORD, new_password=PASSWORD), metadata=me
        )
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "PASSWORD_UNCHANGED")
    await stub.ChangePassword(
        pb.ChangePasswordRequest(current_password=PASSWORD, new_password=new), metadata=me
    )
    assert await stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=here.refresh_token))
    code, _, _ = await _fails(
        stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=there.refresh_token))
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert await stub.Login(pb.LoginRequest(email=EMAIL, password=new))


# ---- GetJwks and signing-key storage ----------------------------------------------------------


async def test_get_jwks_is_internal(auth_server: AuthServer) -> None:
    for caller in ("edge", "keys", "credentials", "workspaces"):
        jwks = json.loads((await auth_server.stub(caller).GetJwks(pb.GetJwksRequest())).jwks_json)
        assert len(jwks["keys"]) == 2
        assert all("d" not in k for k in jwks["keys"])
    code, reason, _ = await _fails(auth_server.stub("outsider").GetJwks(pb.GetJwksRequest()))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "CALLER_NOT_ALLOWED")


async def test_signing_keys_are_encrypted_at_rest(auth_server: AuthServer) -> None:
    from auth_service.__main__ import key_manager

    rows = await _engine_execute(auth_server, "SELECT * FROM signing_keys")
    assert len(rows) == 2
    dump = repr(rows).encode()
    sealer = key_manager(auth_server.settings)  # the same KeyManager the server was wired with
    for row in rows:
        assert row.sealed_private_key.startswith("vault:v")
        private = await sealer.decrypt(row.sealed_private_key, f"auth/signing-key/{row.kid}")
        assert len(private) == 32
        for form in (
            private,
            private.hex().encode(),
            base64.b64encode(private),
            base64.urlsafe_b64encode(private).rstrip(b"="),
        ):
            assert form not in dump
        if auth_server.settings.database_url.startswith("sqlite"):
            blob = _sqlite_bytes(auth_server.settings.database_url)
            assert private not in blob
            assert base64.urlsafe_b64encode(private).rstrip(b"=") not in blob
