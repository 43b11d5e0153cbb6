"""The Python SDK (clients/python) against the real stack: the README journey sync and async,
typed errors, the MFA login step, automatic refresh, and the verifiers for platform services."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from devstack import Stack
from railguard import AsyncClient, Client, MfaRequired, Tokens
from railguard.errors import BadRequest, NotFound, PermissionDenied, Unauthenticated
from railguard.verify import (
    AccessTokenVerifier,
    ApiKeyVerifier,
    AsyncAccessTokenVerifier,
    AsyncApiKeyVerifier,
)
from testkit.totp import secret_from_uri, totp_code, wait_for_fresh_step

from .conftest import PASSWORD

ISSUER, AUDIENCE = "https://railguard.local", "railguard"  # the stack's defaults
SECRET_VALUE = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789xyz9"


def _email() -> str:
    return f"sdk{secrets.token_hex(4)}@example.com"


def _client(stack: Stack, **kw: Any) -> Client:
    return Client(stack.url, verify=str(stack.certs / "ca.crt"), **kw)


def _async_client(stack: Stack, **kw: Any) -> AsyncClient:
    return AsyncClient(stack.url, verify=str(stack.certs / "ca.crt"), **kw)


def test_readme_journey_sync(stack: Stack) -> None:
    seen: list[Tokens] = []
    with _client(stack, on_tokens=seen.append) as rg:
        email, bob = _email(), _email()
        rg.sign_up(email, PASSWORD)
        rg.sign_up(bob, PASSWORD)
        tokens = rg.login(email, PASSWORD)
        assert seen == [tokens] and tokens.refresh_token
        me = rg.users.me()
        assert me["email"] == email

        ws = rg.workspaces.create("Acme")
        assert ws["callerRole"] == "ROLE_OWNER" and ws["name"].startswith("workspaces/")
        ws_id = ws["name"].split("/")[1]
        assert rg.workspaces.update(ws_id, display_name="Acme Inc")["displayName"] == "Acme Inc"
        assert ws["name"] in [w["name"] for w in rg.workspaces.list(page_size=1)]

        member = rg.members.add(ws_id, bob, "ROLE_USER")
        assert rg.members.set_role(ws_id, member["name"], "ROLE_ADMIN")["role"] == "ROLE_ADMIN"
        assert {m["email"] for m in rg.members.list(ws_id)} == {email, bob}
        rg.members.remove(ws_id, member["name"].rsplit("/", 1)[1])
        assert [m["email"] for m in rg.members.list(ws_id)] == [email]

        created = rg.api_keys.create(
            ws_id, "ci", ["workspaces:read"], allowed_cidrs=["127.0.0.0/8", "::1/128"]
        )
        key, key_name = created["key"], created["apiKey"]["name"]
        assert key.startswith("rg_live_") and "key" not in rg.api_keys.get(key_name)
        with _client(stack, api_key=key) as machine:
            assert machine.workspaces.get(ws_id)["name"] == ws["name"]
            who = machine.whoami()
            assert (who["type"], who["workspace"]) == ("apiKey", ws["name"])
        rotated = rg.api_keys.rotate(key_name, grace_period_seconds=0)
        assert rotated["key"] != key
        assert rg.api_keys.revoke(key_name)["state"] == "API_KEY_STATE_REVOKED"
        with _client(stack, api_key=rotated["key"]) as machine, pytest.raises(Unauthenticated) as e:
            machine.workspaces.get(ws_id)
        assert e.value.code == "KEY_REVOKED"
        assert any(s["scope"] == "workspaces:read" for s in rg.api_keys.scopes())

        credential = rg.credentials.create(ws_id, "OpenAI", "openai", SECRET_VALUE)
        assert credential["maskedValue"] == "sk-proj-abc...xyz9"
        assert SECRET_VALUE not in json.dumps(list(rg.credentials.list(ws_id)))
        assert rg.credentials.delete(credential["name"])["state"] == "STATE_DELETED"

        hook = rg.webhooks.create(ws_id, "deploys")
        delivered = rg.webhooks.deliver(hook["webhookTrigger"]["name"], hook["token"], {"a": 1})
        assert delivered["deliveryId"]
        assert len(list(rg.webhooks.deliveries(hook["webhookTrigger"]["name"]))) == 1

        events = list(rg.audit.list(ws_id, page_size=2))  # several pages
        assert len(events) >= 8 and len({e["sequence"] for e in events}) == len(events)
        assert rg.audit.verify(ws_id)["ok"] is True
        first = next(iter(rg.audit.stream(ws_id)))
        assert first["action"] == "workspace.create"

        assert "258046" not in json.dumps(rg.deployments.set_pin(ws_id, "d1", "258046"))
        assert rg.deployments.get_pin(ws_id, "d1")["name"].endswith("/deployments/d1/pin")
        assert rg.deployments.verify_pin(ws_id, "d1", "258046")["accessToken"]
        rg.deployments.clear_pin(ws_id, "d1")

        # ownership moves to another member; the caller stays on as Admin
        second = rg.workspaces.create("Handover")
        rg.members.add(second["name"], bob, "ROLE_ADMIN")
        member_id = [m for m in rg.members.list(second["name"]) if m["email"] == bob][0]["name"]
        rg.workspaces.transfer_ownership(second["name"], member_id.rsplit("/", 1)[1])
        assert rg.workspaces.get(second["name"])["callerRole"] == "ROLE_ADMIN"

        assert [s["current"] for s in rg.sessions.list()] == [True]
        refreshed = rg.refresh()
        assert refreshed.access_token != tokens.access_token and seen[-1] == refreshed
        rg.logout()
    # the session's refresh token is dead at once (its access tokens within 1 s at the edge)
    with _client(stack, tokens=refreshed) as stale, pytest.raises(Unauthenticated):
        stale.refresh()


async def test_readme_journey_async_with_the_mfa_step(stack: Stack) -> None:
    async with _async_client(stack) as rg:
        email = _email()
        await rg.sign_up(email, PASSWORD)
        await rg.login(email, PASSWORD)
        ws = await rg.workspaces.create("Async Inc")
        created = await rg.api_keys.create(ws["name"], "ci", ["workspaces:read", "audit:read"])
        assert [k["name"] async for k in rg.api_keys.list(ws["name"])] == [
            created["apiKey"]["name"]
        ]
        await rg.credentials.create(ws["name"], "Generic", "generic", SECRET_VALUE)
        assert [c["provider"] async for c in rg.credentials.list(ws["name"])] == ["generic"]
        events = [e async for e in rg.audit.list(ws["name"], page_size=1)]
        assert [e["action"] for e in events][-1] == "workspace.create"
        assert (await rg.audit.verify(ws["name"]))["ok"] is True
        async with _async_client(stack, api_key=created["key"]) as machine:
            async for event in machine.audit.stream(ws["name"]):
                assert event["sequence"] == "1"
                break

        # MFA: enroll, then login answers with a challenge that verify_mfa completes (aal2)
        begun = await rg.mfa.begin_totp()
        secret = secret_from_uri(begun["otpauthUri"])
        await wait_for_fresh_step()
        done = await rg.mfa.confirm_totp(totp_code(secret, steps=-1))
        assert len(done["recoveryCodes"]) == 10
        with pytest.raises(MfaRequired) as challenge:
            await rg.login(email, PASSWORD)
        assert challenge.value.methods and challenge.value.challenge_token
        await rg.verify_mfa(challenge.value.challenge_token, totp_code=totp_code(secret))
        assert (await rg.whoami())["aal"] == "aal2"
        await rg.logout()


def test_errors_are_typed_and_carry_code_status_request_id(stack: Stack) -> None:
    with _client(stack) as rg:
        rg.sign_up(email := _email(), PASSWORD)
        rg.login(email, PASSWORD)
        with pytest.raises(NotFound) as missing:
            rg.workspaces.get("0" * 32)
        assert (missing.value.status, missing.value.code) == (404, "NOT_FOUND")
        assert len(missing.value.request_id) >= 16
        ws = rg.workspaces.create("Errors")
        with pytest.raises(BadRequest) as bad:
            rg.api_keys.create(ws["name"], "", ["workspaces:read"])
        assert bad.value.status == 400 and bad.value.code
        assert [v.field for v in bad.value.violations] == ["api_key.display_name"]
        key = rg.api_keys.create(ws["name"], "ro", ["workspaces:read"])["key"]
    with _client(stack, api_key=key) as machine, pytest.raises(PermissionDenied) as denied:
        machine.api_keys.create(ws["name"], "escalate", ["keys:write"])
    assert denied.value.code == "SCOPE_NOT_GRANTED"


def test_an_expiring_access_token_is_refreshed_before_the_request(stack: Stack) -> None:
    with _client(stack) as rg:
        rg.sign_up(email := _email(), PASSWORD)
        tokens = rg.login(email, PASSWORD)
    dying = Tokens(tokens.access_token, tokens.refresh_token, access_expires_at=time.time() + 5)
    stored: list[Tokens] = []
    with _client(stack, tokens=dying, on_tokens=stored.append) as rg:
        assert rg.users.me()["email"] == email
        assert len(stored) == 1 and stored[0].access_token != tokens.access_token
        assert rg.tokens == stored[0]


async def test_a_refused_access_token_is_refreshed_once_and_the_call_retried(stack: Stack) -> None:
    async with _async_client(stack) as rg:
        await rg.sign_up(email := _email(), PASSWORD)
        tokens = await rg.login(email, PASSWORD)
    # far from expiry by the clock, but refused by the edge (as after a dropped signing key)
    refused = Tokens("not-a-jwt", tokens.refresh_token, access_expires_at=time.time() + 600)
    stored: list[Tokens] = []
    async with _async_client(stack, tokens=refused, on_tokens=stored.append) as rg:
        assert (await rg.users.me())["email"] == email
        assert len(stored) == 1 and stored[0].access_token.count(".") == 2
    no_refresh = Tokens("not-a-jwt", "", access_expires_at=time.time() + 600)
    async with _async_client(stack, tokens=no_refresh) as rg:
        with pytest.raises(Unauthenticated) as refused_for_good:
            await rg.users.me()
        assert refused_for_good.value.code == "TOKEN_INVALID"


def _signed(key: Ed25519PrivateKey, kid: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u1", "sid": "s1", "jti": "j1"}
    body |= {"iat": now, "nbf": now, "exp": now + 600, **claims}
    return jwt.encode(body, key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"})


def _jwk(key: Ed25519PrivateKey, kid: str) -> dict[str, str]:
    raw = key.public_key().public_bytes_raw()
    x = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}


def test_access_tokens_verify_locally_from_the_cached_jwks(stack: Stack) -> None:
    with _client(stack) as rg:
        rg.sign_up(email := _email(), PASSWORD)
        token = rg.login(email, PASSWORD).access_token
        user_id = rg.users.me()["id"]
        # the edge's JWKS plus one key of our own, to sign expired and unknown-kid tokens
        ours = Ed25519PrivateKey.generate()

        def fetch() -> str:
            jwks = rg.jwks()
            return json.dumps({"keys": [*jwks["keys"], _jwk(ours, "ours")]})

        verifier = AccessTokenVerifier(fetch, issuer=ISSUER, audience=AUDIENCE)
        claims = verifier.verify(token)
        assert (claims.user_id, claims.aal, claims.amr) == (user_id, "aal1", ("pwd",))
        verifier.verify(token)
        assert verifier.fetches == 1, "the JWKS is cached"

        with pytest.raises(Unauthenticated) as expired:
            verifier.verify(_signed(ours, "ours", exp=int(time.time()) - 60))
        assert expired.value.code == "TOKEN_EXPIRED"
        wrong_aud = AccessTokenVerifier(fetch, issuer=ISSUER, audience="someone-else")
        with pytest.raises(Unauthenticated) as aud:
            wrong_aud.verify(token)
        assert aud.value.code == "TOKEN_INVALID"
        with pytest.raises(Unauthenticated):
            verifier.verify(_signed(ours, "ours", iss="https://evil.example"))

        # an unknown kid refetches once (the key may be new), then is refused; a second unknown
        # kid right after does not refetch again (rate limit)
        fast = AccessTokenVerifier(fetch, issuer=ISSUER, audience=AUDIENCE, min_refetch_seconds=0)
        fast.verify(token)
        with pytest.raises(Unauthenticated) as unknown:
            fast.verify(_signed(Ed25519PrivateKey.generate(), "nobody"))
        assert unknown.value.code == "TOKEN_INVALID" and fast.fetches == 2
        for kid in ("nobody-1", "nobody-2"):
            with pytest.raises(Unauthenticated):
                verifier.verify(_signed(Ed25519PrivateKey.generate(), kid))
        assert verifier.fetches == 1, "unknown kids refetch at most every min_refetch_seconds"
        with pytest.raises(Unauthenticated):  # alg/typ pinned: an HS256 token is refused unread
            verifier.verify(jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256"))


async def test_async_verifiers_and_the_api_key_cache(stack: Stack) -> None:
    ca = str(stack.certs / "ca.crt")
    async with _async_client(stack) as rg:
        await rg.sign_up(email := _email(), PASSWORD)
        token = (await rg.login(email, PASSWORD)).access_token
        verifier = AsyncAccessTokenVerifier.for_client(rg, issuer=ISSUER, audience=AUDIENCE)
        assert (await verifier.verify(token)).session_id
        ws = await rg.workspaces.create("Platform")
        created = await rg.api_keys.create(ws["name"], "svc", ["workspaces:read"])
        keys = AsyncApiKeyVerifier.for_edge(stack.url, verify=ca)
        principal = await keys.verify(created["key"], required_scope="workspaces:read")
        assert principal["workspace"] == ws["name"]
        await keys.verify(created["key"])
        assert keys.lookups == 1, "answers are cached for the ttl"
        with pytest.raises(PermissionDenied):
            await keys.verify(created["key"], required_scope="keys:write")
        await rg.api_keys.revoke(created["apiKey"]["name"])
    await asyncio.sleep(
        1.1
    )  # the default ttl is 1 s: a revocation is honoured within about a second
    with pytest.raises(Unauthenticated) as revoked:
        await keys.verify(created["key"])
    assert revoked.value.code == "KEY_REVOKED"
    await keys.aclose()
    with ApiKeyVerifier.for_edge(stack.url, verify=ca) as sync_keys, pytest.raises(Unauthenticated):
        sync_keys.verify("rg_live_" + "x" * 50)
