"""Steps shared by the auth use-case unit tests."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from auth_service.domain import Assurance
from auth_service.usecases import ChallengeIssued, TokenPair
from servicekit.errors import RailguardError
from testkit.totp import rfc6238, secret_from_uri

from .conftest import PASSWORD, Env

EMAIL = "alice@example.com"


def claims(pair: TokenPair) -> dict[str, Any]:
    return jwt.decode(pair.access_token, options={"verify_signature": False})


def assurance(pair: TokenPair) -> Assurance:
    c = claims(pair)
    return Assurance(c["aal"], tuple(c["amr"]), c["auth_time"])


def code(env: Env, secret: bytes, steps: int = 0) -> str:
    return rfc6238(secret, env.clock.now().timestamp() + 30 * steps)


async def reason(call: Any) -> str:
    with pytest.raises(RailguardError) as err:
        await call
    return err.value.reason


async def user(env: Env, email: str = EMAIL) -> tuple[str, TokenPair]:
    """A signed-up user and the tokens of a password login."""
    created = await env.auth.accounts.sign_up(email, PASSWORD, "")
    pair = await env.auth.sessions.login(email, PASSWORD)
    assert isinstance(pair, TokenPair)
    return created.id, pair


async def enrolled(env: Env, email: str = EMAIL) -> tuple[str, bytes, list[str], TokenPair]:
    """A user with a confirmed factor; the clock is moved to the next step afterwards."""
    user_id, pair = await user(env, email)
    enrollment = await env.auth.mfa.begin_totp_enrollment(user_id, assurance(pair))
    secret = secret_from_uri(enrollment.otpauth_uri)
    codes, aal2 = await env.auth.mfa.confirm_totp_enrollment(
        user_id, claims(pair)["sid"], code(env, secret)
    )
    env.clock.advance(30)
    return user_id, secret, codes, aal2


async def challenge(env: Env, email: str = EMAIL) -> ChallengeIssued:
    result = await env.auth.sessions.login(email, PASSWORD)
    assert isinstance(result, ChallengeIssued)
    return result
