"""Signing keys on the in-memory fakes: the published set and rotation."""

from __future__ import annotations

import json

import jwt

from .conftest import Env
from .helpers import user


def _kids(jwks: str) -> list[str]:
    return [k["kid"] for k in json.loads(jwks)["keys"]]


async def test_the_first_rotation_publishes_a_current_and_a_next_key(env: Env) -> None:
    keys = env.store.tables.keys.values()
    assert sorted(k.state.value for k in keys) == ["current", "next"]
    current = next(k.kid for k in keys if k.state.value == "current")
    assert _kids(await env.auth.signing_keys.jwks())[0] == current
    _, pair = await user(env)
    assert jwt.get_unverified_header(pair.access_token)["kid"] == current
    assert all(k.sealed_private_key.startswith("auth/signing-key/") for k in keys)
    [event] = await env.audit("signingKey.rotate")
    assert event.metadata["created"] == "current,next"


async def test_a_rotation_when_nothing_is_due_changes_nothing(env: Env) -> None:
    plan = await env.auth.signing_keys.rotate_signing_keys()
    assert plan.empty
    assert len(await env.audit("signingKey.rotate")) == 1


async def test_rotate_now_promotes_the_next_key_and_signs_with_it(env: Env) -> None:
    keys = list(env.store.tables.keys.values())
    old = next(k.kid for k in keys if k.state.value == "current")
    nxt = next(k.kid for k in keys if k.state.value == "next")
    waiting = await env.auth.signing_keys.rotate_signing_key_now()
    assert waiting.promote is None  # the next key has not been published for the cache time
    plan = await env.auth.signing_keys.rotate_signing_key_now(immediate=True)
    assert (plan.promote, plan.retire) == (nxt, (old,))
    _, pair = await user(env)
    assert jwt.get_unverified_header(pair.access_token)["kid"] == nxt
    assert old in _kids(await env.auth.signing_keys.jwks())  # the retired key still verifies
    assert (await env.audit("signingKey.rotate"))[-1].metadata["promoted_kid"] == nxt
