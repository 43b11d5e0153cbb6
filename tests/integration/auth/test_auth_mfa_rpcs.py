"""MFA, step-up, login throttling and deployment PINs through a real server (mTLS, SQLite and
PostgreSQL). TOTP codes come from testkit.totp, an RFC 6238 implementation of its own."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable
from typing import Any

import grpc
import jwt
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from jwt.algorithms import OKPAlgorithm
from railguard.access.v1 import access_pb2
from railguard.auth.v1 import auth_service_pb2 as pb
from servicekit.db import dispose_engine
from sqlalchemy import text
from testkit.totp import secret_from_uri, totp_code, wait_for_fresh_step

from .conftest import AuthServer, as_token, as_user, error_info

PASSWORD = "correct horse battery staple"


async def _fails(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return error_info(err.value)


def _claims(tokens: pb.TokenPair) -> dict[str, Any]:
    return jwt.decode(tokens.access_token, options={"verify_signature": False})


async def _rows(server: AuthServer, sql: str) -> list[Any]:
    from servicekit import create_engine

    engine = create_engine(server.settings.database_url)
    try:
        async with engine.begin() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await dispose_engine(engine)


async def _login(server: AuthServer, email: str, ip: str = "") -> pb.LoginResponse:
    meta = as_user("", client_ip=ip) if ip else None
    return await server.stub().Login(pb.LoginRequest(email=email, password=PASSWORD), metadata=meta)


async def _enrolled(server: AuthServer, email: str) -> tuple[str, bytes, list[str], pb.TokenPair]:
    """Sign up, log in, enroll with the previous step's code (the current one stays fresh)."""
    stub = server.stub()
    user = await stub.SignUp(pb.SignUpRequest(email=email, password=PASSWORD))
    tokens = (await _login(server, email)).tokens
    me = as_token(_claims(tokens))
    begun = await stub.BeginTotpEnrollment(pb.BeginTotpEnrollmentRequest(), metadata=me)
    assert (begun.digits, begun.period, begun.algorithm) == (6, 30, "SHA1")
    secret = secret_from_uri(begun.otpauth_uri)
    assert base64.b32decode(begun.secret) == secret and len(secret) == 20
    await wait_for_fresh_step()
    confirmed = await stub.ConfirmTotpEnrollment(
        pb.ConfirmTotpEnrollmentRequest(code=totp_code(secret, steps=-1)), metadata=me
    )
    return user.id, secret, list(confirmed.recovery_codes), confirmed.tokens


async def test_totp_journey(auth_server: AuthServer) -> None:
    stub = auth_server.stub()
    user = await stub.SignUp(pb.SignUpRequest(email="mfa@example.com", password=PASSWORD))
    first = (await _login(auth_server, "mfa@example.com")).tokens
    me = as_token(_claims(first))
    status = await stub.GetMfaStatus(pb.GetMfaStatusRequest(), metadata=me)
    assert not status.totp_enabled and not status.totp_pending
    begun = await stub.BeginTotpEnrollment(pb.BeginTotpEnrollmentRequest(), metadata=me)
    assert begun.otpauth_uri.startswith("otpauth://totp/Railguard:mfa@example.com?")
    status = await stub.GetMfaStatus(pb.GetMfaStatusRequest(), metadata=me)
    assert status.totp_pending and not status.totp_enabled
    secret = secret_from_uri(begun.otpauth_uri)
    code, reason, _ = await _fails(
        stub.ConfirmTotpEnrollment(pb.ConfirmTotpEnrollmentRequest(code="123456"), metadata=me)
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_MFA_CODE")
    await wait_for_fresh_step()
    confirmed = await stub.ConfirmTotpEnrollment(
        pb.ConfirmTotpEnrollmentRequest(code=totp_code(secret, steps=-1)), metadata=me
    )
    assert len(confirmed.recovery_codes) == 10
    assert _claims(confirmed.tokens)["aal"] == "aal2"
    # the calling aal1 session was replaced
    code, _, _ = await _fails(
        stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=first.refresh_token))
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED

    login = await _login(auth_server, "mfa@example.com")
    assert not login.HasField("tokens") and login.HasField("mfa_challenge")
    challenge = login.mfa_challenge
    assert challenge.expires_in == 300 and list(challenge.methods) == ["totp", "recovery_code"]
    done = await stub.VerifyMfaChallenge(
        pb.VerifyMfaChallengeRequest(
            challenge_token=challenge.challenge_token, totp_code=totp_code(secret)
        )
    )
    claims = _claims(done.tokens)
    assert (claims["sub"], claims["aal"], claims["amr"]) == (user.id, "aal2", ["pwd", "otp"])
    refreshed = await stub.RefreshToken(
        pb.RefreshTokenRequest(refresh_token=done.tokens.refresh_token)
    )
    assert _claims(refreshed.tokens)["aal"] == "aal2"
    assert _claims(refreshed.tokens)["amr"] == ["pwd", "otp"]

    # the secret is encrypted at rest and never returned again
    rows = await _rows(auth_server, "SELECT sealed_secret FROM totp_factors")
    assert rows[0].sealed_secret.startswith("vault:v1:")
    dump = repr(await _rows(auth_server, "SELECT * FROM totp_factors")).encode()
    assert secret not in dump and begun.secret.encode() not in dump
    status = await stub.GetMfaStatus(pb.GetMfaStatusRequest(), metadata=as_token(claims))
    assert status.totp_enabled and status.recovery_codes_remaining == 10
    assert begun.secret not in str(status)


async def test_one_code_twice_in_parallel_lets_exactly_one_through(
    auth_server: AuthServer,
) -> None:
    _, secret, _, _ = await _enrolled(auth_server, "race@example.com")
    challenges = [
        (await _login(auth_server, "race@example.com")).mfa_challenge.challenge_token
        for _ in range(4)
    ]
    code = totp_code(secret)
    stub = auth_server.stub()
    results = await asyncio.gather(
        *(
            stub.VerifyMfaChallenge(pb.VerifyMfaChallengeRequest(challenge_token=c, totp_code=code))
            for c in challenges
        ),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, pb.VerifyMfaChallengeResponse)]
    assert len(wins) == 1
    for r in results:
        if not isinstance(r, pb.VerifyMfaChallengeResponse):
            assert isinstance(r, grpc.aio.AioRpcError)
            assert error_info(r)[:2] == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_MFA_CODE")


async def test_recovery_codes_over_grpc(auth_server: AuthServer) -> None:
    _, _, codes, aal2 = await _enrolled(auth_server, "recovery@example.com")
    stub = auth_server.stub()
    challenges = [
        (await _login(auth_server, "recovery@example.com")).mfa_challenge.challenge_token
        for _ in range(3)
    ]
    results = await asyncio.gather(
        *(
            stub.VerifyMfaChallenge(
                pb.VerifyMfaChallengeRequest(challenge_token=c, recovery_code=codes[0])
            )
            for c in challenges
        ),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, pb.VerifyMfaChallengeResponse)]
    assert len(wins) == 1 and _claims(wins[0].tokens)["amr"] == ["pwd", "rec"]
    # regeneration: refused at aal1, allowed at aal2, voids the old set
    aal1 = as_user(_claims(aal2)["sub"], _claims(aal2)["sid"], auth_time=_claims(aal2)["auth_time"])
    code, reason, _ = await _fails(
        stub.RegenerateRecoveryCodes(pb.RegenerateRecoveryCodesRequest(), metadata=aal1)
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "STEP_UP_REQUIRED")
    fresh = await stub.RegenerateRecoveryCodes(
        pb.RegenerateRecoveryCodesRequest(), metadata=as_token(_claims(aal2))
    )
    assert len(fresh.recovery_codes) == 10
    c = (await _login(auth_server, "recovery@example.com")).mfa_challenge.challenge_token
    code, reason, _ = await _fails(
        stub.VerifyMfaChallenge(
            pb.VerifyMfaChallengeRequest(challenge_token=c, recovery_code=codes[1])
        )
    )
    assert reason == "INVALID_MFA_CODE"
    hashes = await _rows(auth_server, "SELECT code_hash FROM recovery_codes")
    assert not any(code.replace("-", "") in repr(hashes) for code in fresh.recovery_codes)


async def test_step_up_for_disable_and_password_change(auth_server: AuthServer) -> None:
    user_id, secret, _, aal2 = await _enrolled(auth_server, "step@example.com")
    stub = auth_server.stub()
    claims = _claims(aal2)
    old = as_token({**claims, "auth_time": claims["auth_time"] - 16 * 60})
    aal1 = as_token({**claims, "aal": "aal1", "amr": ["pwd"]})
    for meta in (old, aal1):
        code, reason, _ = await _fails(stub.DisableTotp(pb.DisableTotpRequest(), metadata=meta))
        assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "STEP_UP_REQUIRED")
        code, reason, _ = await _fails(
            stub.ChangePassword(
                pb.ChangePasswordRequest(
                    current_password=PASSWORD, new_password="another fine passphrase"
                ),
                metadata=meta,
            )
        )
        assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "STEP_UP_REQUIRED")
    await stub.ChangePassword(
        pb.ChangePasswordRequest(current_password=PASSWORD, new_password="another fine passphrase"),
        metadata=as_token(claims),
    )
    after = await stub.Login(
        pb.LoginRequest(email="step@example.com", password="another fine passphrase")
    )
    assert after.HasField("mfa_challenge")  # the password change did not bypass MFA
    await stub.DisableTotp(pb.DisableTotpRequest(), metadata=as_token(claims))
    plain = await stub.Login(
        pb.LoginRequest(email="step@example.com", password="another fine passphrase")
    )
    assert plain.HasField("tokens") and _claims(plain.tokens)["aal"] == "aal1"


def _retry_after(err: grpc.aio.AioRpcError) -> float:
    status = rpc_status.from_call(err)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToMilliseconds() / 1000
    raise AssertionError("no RetryInfo")


async def test_parallel_wrong_passwords_are_counted_atomically(auth_server: AuthServer) -> None:
    stub = auth_server.stub()
    await stub.SignUp(pb.SignUpRequest(email="brute@example.com", password=PASSWORD))

    async def attempt(i: int, email: str) -> tuple[str, str, float]:
        try:
            await stub.Login(
                pb.LoginRequest(email=email, password="not the password"),
                metadata=as_user("", client_ip=f"10.4.{i // 200}.{i % 200}"),
            )
        except grpc.aio.AioRpcError as err:
            code, reason, message = error_info(err)
            retry = _retry_after(err) if code == grpc.StatusCode.RESOURCE_EXHAUSTED else 0.0
            return reason, message, retry
        raise AssertionError("a wrong password logged in")

    results = await asyncio.gather(*(attempt(i, "brute@example.com") for i in range(30)))
    reasons = [r[0] for r in results]
    assert reasons.count("INVALID_CREDENTIALS") == 5
    assert reasons.count("LOGIN_THROTTLED") == 25
    # an unknown account throttles exactly the same way
    unknown = await asyncio.gather(*(attempt(100 + i, "ghost@example.com") for i in range(30)))
    assert sorted(r[0] for r in unknown) == sorted(reasons)
    throttled = [r for r in results + unknown if r[0] == "LOGIN_THROTTLED"]
    assert {r[1] for r in throttled} == {"too many attempts; retry later"}
    assert all(1 <= r[2] <= 2 for r in throttled)  # the same backoff, to the second
    counters = await _rows(auth_server, "SELECT key, failures FROM throttle_counters")
    assert "brute@example.com" not in repr(counters)  # keyed by a hash, not the address


async def test_mfa_verification_is_throttled_per_ip(auth_server: AuthServer) -> None:
    stub = auth_server.stub()
    meta = as_user("", client_ip="198.18.0.1")
    for _ in range(20):
        code, reason, _ = await _fails(
            stub.VerifyMfaChallenge(
                pb.VerifyMfaChallengeRequest(challenge_token="rgm_" + "A" * 43, totp_code="123456"),
                metadata=meta,
            )
        )
        assert reason == "INVALID_MFA_CHALLENGE"
    code, reason, _ = await _fails(
        stub.VerifyMfaChallenge(
            pb.VerifyMfaChallengeRequest(challenge_token="rgm_" + "A" * 43, totp_code="123456"),
            metadata=meta,
        )
    )
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "MFA_THROTTLED")


# ---- deployment PINs --------------------------------------------------------------------------

PIN_NAME = "workspaces/w1/deployments/d1/pin"


def _admin(workspace: str = "w1", role: int = access_pb2.ROLE_ADMIN) -> Any:
    return as_user("admin", "s1", workspace_id=workspace, role=role, aal="aal2")


async def test_deployment_pins(auth_server: AuthServer) -> None:
    stub = auth_server.stub()
    pin = await stub.SetDeploymentPin(
        pb.SetDeploymentPinRequest(name=PIN_NAME, pin="258046"), metadata=_admin()
    )
    assert pin.name == PIN_NAME and "258046" not in str(pin)
    assert (
        await stub.GetDeploymentPin(pb.GetDeploymentPinRequest(name=PIN_NAME), metadata=_admin())
    ).name == PIN_NAME
    rows = await _rows(auth_server, "SELECT pin_hash FROM deployment_pins")
    assert rows[0].pin_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    # another workspace's admin sees nothing; a User may not set it
    code, reason, _ = await _fails(
        stub.SetDeploymentPin(
            pb.SetDeploymentPinRequest(name=PIN_NAME, pin="258046"), metadata=_admin("w2")
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
    code, reason, _ = await _fails(
        stub.SetDeploymentPin(
            pb.SetDeploymentPinRequest(name=PIN_NAME, pin="258046"),
            metadata=_admin(role=access_pb2.ROLE_USER),
        )
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_TOO_LOW")
    code, reason, message = await _fails(
        stub.SetDeploymentPin(
            pb.SetDeploymentPinRequest(name=PIN_NAME, pin="123456"), metadata=_admin()
        )
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "PIN_TOO_WEAK")
    for short in ("2580", "73914"):  # 4 and 5 digits were accepted before issue 8
        with pytest.raises(grpc.aio.AioRpcError) as short_err:
            await stub.SetDeploymentPin(
                pb.SetDeploymentPinRequest(name=PIN_NAME, pin=short), metadata=_admin()
            )
        assert short_err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(short_err.value)[1] == "PIN_TOO_SHORT"
        assert short not in (short_err.value.details() or "")
    assert "1234" not in message

    verified = await stub.VerifyDeploymentPin(
        pb.VerifyDeploymentPinRequest(name="workspaces/w1/deployments/d1", pin="258046"),
        metadata=as_user("", client_ip="192.0.2.50"),
    )
    jwks = json.loads((await stub.GetJwks(pb.GetJwksRequest())).jwks_json)
    header = jwt.get_unverified_header(verified.access_token)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(
        verified.access_token,
        OKPAlgorithm.from_jwk(json.dumps(key)),
        algorithms=["EdDSA"],
        audience="railguard-agent-ui",
        issuer=auth_server.settings.issuer,
    )
    assert header["typ"] == "dep+jwt"
    assert (claims["ws"], claims["deployment"], verified.expires_in) == ("w1", "d1", 900)
    with pytest.raises(jwt.InvalidAudienceError):  # never usable as a user token
        jwt.decode(
            verified.access_token,
            OKPAlgorithm.from_jwk(json.dumps(key)),
            algorithms=["EdDSA"],
            audience=auth_server.settings.audience,
        )

    wrong = await _fails(
        stub.VerifyDeploymentPin(
            pb.VerifyDeploymentPinRequest(name="workspaces/w1/deployments/d1", pin="999999")
        )
    )
    unknown = await _fails(
        stub.VerifyDeploymentPin(
            pb.VerifyDeploymentPinRequest(name="workspaces/w9/deployments/zz", pin="999999")
        )
    )
    assert wrong == unknown == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_PIN", wrong[2])
    await stub.ClearDeploymentPin(pb.ClearDeploymentPinRequest(name=PIN_NAME), metadata=_admin())
    code, reason, _ = await _fails(
        stub.GetDeploymentPin(pb.GetDeploymentPinRequest(name=PIN_NAME), metadata=_admin())
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "PIN_NOT_SET")


async def test_parallel_pin_guesses_are_limited(auth_server: AuthServer) -> None:
    stub = auth_server.stub()
    await stub.SetDeploymentPin(
        pb.SetDeploymentPinRequest(name=PIN_NAME, pin="482619"), metadata=_admin()
    )

    async def guess(i: int) -> str:
        try:
            await stub.VerifyDeploymentPin(
                pb.VerifyDeploymentPinRequest(
                    name="workspaces/w1/deployments/d1", pin=f"{100000 + i}"
                ),
                metadata=as_user("", client_ip="10.5.0.1"),
            )
        except grpc.aio.AioRpcError as err:
            return error_info(err)[1]
        return "OK"

    # one client guessing in parallel is held back after 5 failures ...
    reasons = await asyncio.gather(*(guess(i) for i in range(25)))
    assert reasons.count("INVALID_PIN") == 5 and reasons.count("PIN_THROTTLED") == 20
    # ... but cannot lock the deployment out for another client
    token = await stub.VerifyDeploymentPin(
        pb.VerifyDeploymentPinRequest(name="workspaces/w1/deployments/d1", pin="482619"),
        metadata=as_user("", client_ip="10.5.0.2"),
    )
    assert token.access_token
