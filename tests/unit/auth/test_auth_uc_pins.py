"""Deployment PINs on the in-memory fakes: tokens, one answer for unknown and wrong, limits."""

from __future__ import annotations

import jwt
import pytest
from servicekit.audit import Outcome
from servicekit.errors import ResourceExhausted, Unauthenticated

from .conftest import Env
from .helpers import reason

WS, DEP, PIN = "ws1", "dep1", "482916"


async def test_the_right_pin_gets_a_deployment_token(env: Env) -> None:
    await env.auth.pins.set_deployment_pin(WS, DEP, PIN)
    token = await env.auth.pins.verify_deployment_pin(WS, DEP, PIN, "10.0.0.1")
    claims = jwt.decode(token.access_token, options={"verify_signature": False})
    assert jwt.get_unverified_header(token.access_token)["typ"] == "dep+jwt"
    assert (claims["sub"], claims["aud"], claims["ws"]) == (
        f"workspaces/{WS}/deployments/{DEP}",
        "railguard-agent-ui",
        WS,
    )
    assert claims["exp"] - claims["iat"] == token.expires_in == 900
    [event] = await env.audit("deploymentPin.set")
    assert event.metadata == {"deployment_id": DEP, "replaced": "false"}
    assert PIN not in repr(await env.audit())


async def test_an_unknown_deployment_answers_like_a_wrong_pin(env: Env) -> None:
    await env.auth.pins.set_deployment_pin(WS, DEP, PIN)
    answers = set()
    for deployment in (DEP, "ghost"):
        with pytest.raises(Unauthenticated) as err:
            await env.auth.pins.verify_deployment_pin(WS, deployment, "000000", "10.0.0.1")
        answers.add((err.value.reason, str(err.value)))
    assert answers == {("INVALID_PIN", "the deployment or PIN is incorrect")}
    assert env.hasher.dummy_calls == 1
    refused = [e for e in await env.audit("deploymentPin.verify")]
    assert [(e.outcome, e.metadata["deployment_id"]) for e in refused] == [
        (Outcome.DENIED, DEP)  # none for the caller-chosen unknown deployment
    ]


async def test_one_guesser_is_limited_and_a_new_pin_clears_the_deployment(env: Env) -> None:
    await env.auth.pins.set_deployment_pin(WS, DEP, PIN)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await env.auth.pins.verify_deployment_pin(WS, DEP, "000000", "10.0.0.1")
    with pytest.raises(ResourceExhausted) as err:
        await env.auth.pins.verify_deployment_pin(WS, DEP, PIN, "10.0.0.1")
    assert err.value.reason == "PIN_THROTTLED"
    # another client is not locked out by this one
    assert await env.auth.pins.verify_deployment_pin(WS, DEP, PIN, "10.0.0.2")
    deployment_key = f"pin:dep:{WS}/{DEP}"
    assert env.store.tables.throttle[deployment_key].failures == 5
    await env.auth.pins.set_deployment_pin(WS, DEP, "739104")
    assert deployment_key not in env.store.tables.throttle


async def test_a_cleared_pin_is_gone(env: Env) -> None:
    await env.auth.pins.set_deployment_pin(WS, DEP, PIN)
    await env.auth.pins.clear_deployment_pin(WS, DEP)
    assert await reason(env.auth.pins.get_deployment_pin(WS, DEP)) == "PIN_NOT_SET"
    assert await reason(env.auth.pins.clear_deployment_pin(WS, DEP)) == "PIN_NOT_SET"
    bad = env.auth.pins.verify_deployment_pin(WS, DEP, PIN, "10.0.0.1")
    assert await reason(bad) == "INVALID_PIN"
