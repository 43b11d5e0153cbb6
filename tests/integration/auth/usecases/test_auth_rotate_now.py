"""Rotating the signing key on demand (``python -m auth_service rotate-signing-key``)."""

from __future__ import annotations

import json

import jwt

from .conftest import PASSWORD, Env


def _kids(jwks: str) -> list[str]:
    return [k["kid"] for k in json.loads(jwks)["keys"]]


async def test_rotate_now_waits_until_verifiers_can_have_the_next_key(env: Env) -> None:
    current, upcoming = _kids(await env.auth.signing_keys.jwks())
    plan = await env.auth.signing_keys.rotate_signing_key_now()
    assert plan.promote is None, "the next key was published just now: caches may lack it"
    assert _kids(await env.auth.signing_keys.jwks()) == [current, upcoming]

    env.clock.advance(env.config.rotation.jwks_cache.total_seconds())
    plan = await env.auth.signing_keys.rotate_signing_key_now()  # long before the 30-day interval
    assert plan.promote == upcoming and plan.retire == (current,)
    kids = _kids(await env.auth.signing_keys.jwks())
    assert kids[0] == upcoming and current in kids and len(kids) == 3  # + retired, + new next


async def test_rotate_now_immediately_signs_with_the_next_key(env: Env) -> None:
    await env.auth.accounts.sign_up("alice@example.com", PASSWORD, "")
    current, upcoming = _kids(await env.auth.signing_keys.jwks())
    plan = await env.auth.signing_keys.rotate_signing_key_now(immediate=True)
    assert plan.promote == upcoming and plan.retire == (current,)
    token = (await env.auth.sessions.login("alice@example.com", PASSWORD)).access_token
    assert jwt.get_unverified_header(token)["kid"] == upcoming
    assert current in _kids(await env.auth.signing_keys.jwks()), (
        "the old key still verifies its tokens"
    )
    assert [e.metadata["promoted_kid"] for e in await env.audit("signingKey.rotate")][
        -1
    ] == upcoming
