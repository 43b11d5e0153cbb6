"""MFA over HTTPS: enrollment, the login challenge, workspace enforcement, throttling, PINs."""

from __future__ import annotations

import base64
import json
from typing import Any

from testkit.totp import secret_from_uri, totp_code, wait_for_fresh_step

from .conftest import PASSWORD, Api


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


async def _enroll(api: Api, token: str) -> tuple[bytes, dict[str, Any]]:
    s, begun, _ = await api.call("POST", "/v1/users/me/mfa/totp:beginEnrollment", token, json={})
    assert s == 200, begun
    secret = secret_from_uri(begun["otpauthUri"])
    await wait_for_fresh_step()
    s, done, _ = await api.call(
        "POST",
        "/v1/users/me/mfa/totp:confirmEnrollment",
        token,
        json={"code": totp_code(secret, steps=-1)},
    )
    assert s == 200, done
    assert len(done["recoveryCodes"]) == 10
    return secret, done


async def test_workspace_enforcement_and_the_login_challenge(api: Api) -> None:
    email, token, _ = await api.user()
    s, ws, _ = await api.call(
        "POST", "/v1/workspaces", token, json={"displayName": "Strict", "mfaRequired": True}
    )
    assert s == 200, ws
    # aal1: the workspace refuses, but the enrollment RPCs stay reachable
    s, body, _ = await api.call("GET", f"/v1/{ws['name']}", token)
    assert (s, body["code"]) == (403, "MFA_REQUIRED")
    s, status, _ = await api.call("GET", "/v1/users/me/mfa", token)
    assert s == 200 and not status.get("totpEnabled")
    secret, done = await _enroll(api, token)
    aal2 = done["tokens"]["accessToken"]
    assert _claims(aal2)["aal"] == "aal2"
    s, body, _ = await api.call("GET", f"/v1/{ws['name']}", aal2)
    assert s == 200, body
    # the replaced aal1 session cannot be refreshed into workspace access
    s, body, _ = await api.call(
        "POST", "/v1/auth:refresh", json={"refreshToken": _refresh_of(token, done)}
    )
    assert s == 401

    # a new login answers with a challenge, not tokens
    s, login, _ = await api.call(
        "POST", "/v1/auth:login", json={"email": email, "password": PASSWORD}
    )
    assert s == 200 and "tokens" not in login
    challenge = login["mfaChallenge"]
    assert challenge["expiresIn"] == 300
    s, body, _ = await api.call(
        "POST",
        "/v1/auth:verifyMfa",
        json={"challengeToken": challenge["challengeToken"], "totpCode": "000000"},
    )
    assert (s, body["code"]) == (401, "INVALID_MFA_CODE")
    assert "000000" not in json.dumps(body)
    s, body, _ = await api.call(
        "POST",
        "/v1/auth:verifyMfa",
        json={"challengeToken": challenge["challengeToken"], "totpCode": totp_code(secret)},
    )
    assert s == 200, body
    claims = _claims(body["tokens"]["accessToken"])
    assert (claims["aal"], claims["amr"]) == ("aal2", ["pwd", "otp"])
    s, _, _ = await api.call("GET", f"/v1/{ws['name']}", body["tokens"]["accessToken"])
    assert s == 200
    # the same code again, on a new challenge: refused (a code works once)
    s, login, _ = await api.call(
        "POST", "/v1/auth:login", json={"email": email, "password": PASSWORD}
    )
    s, body, _ = await api.call(
        "POST",
        "/v1/auth:verifyMfa",
        json={
            "challengeToken": login["mfaChallenge"]["challengeToken"],
            "totpCode": totp_code(secret),
        },
    )
    assert (s, body["code"]) == (401, "INVALID_MFA_CODE")


def _refresh_of(_token: str, _done: dict[str, Any]) -> str:
    return "rgr_" + "A" * 43  # any token of the replaced session fails the same way


async def test_login_throttling_answers_429_with_retry_after(api: Api) -> None:
    email, _, _ = await api.user()
    for _ in range(5):
        s, body, _ = await api.call(
            "POST", "/v1/auth:login", json={"email": email, "password": "wrong password!"}
        )
        assert (s, body["code"]) == (401, "INVALID_CREDENTIALS")
    s, body, headers = await api.call(
        "POST", "/v1/auth:login", json={"email": email, "password": PASSWORD}
    )
    assert (s, body["code"]) == (429, "LOGIN_THROTTLED")
    assert int(headers["Retry-After"]) >= 1  # RetryInfo from the service, mapped by the edge


async def test_deployment_pin_over_https(api: Api) -> None:
    _, token, _ = await api.user()
    s, ws, _ = await api.call("POST", "/v1/workspaces", token, json={"displayName": "Agents"})
    assert s == 200, ws
    pin_path = f"/v1/{ws['name']}/deployments/d1/pin"
    s, body, _ = await api.call("POST", f"{pin_path}:set", token, json={"pin": "258046"})
    assert s == 200 and "258046" not in json.dumps(body), body
    s, body, _ = await api.call(
        "POST", f"/v1/{ws['name']}/deployments/d1:verifyPin", json={"pin": "258046"}
    )
    assert s == 200, body
    dep_token = body["accessToken"]
    assert _claims(dep_token)["aud"] == "railguard-agent-ui"
    s, body, _ = await api.call("GET", "/v1/users/me", dep_token)  # not a user token
    assert s == 401
    wrong = await api.call(
        "POST", f"/v1/{ws['name']}/deployments/d1:verifyPin", json={"pin": "999999"}
    )
    unknown = await api.call(
        "POST", f"/v1/{ws['name']}/deployments/nope:verifyPin", json={"pin": "999999"}
    )
    assert wrong[0] == unknown[0] == 401
    assert wrong[1]["code"] == unknown[1]["code"] == "INVALID_PIN"
    assert wrong[1]["detail"] == unknown[1]["detail"]
    s, body, _ = await api.call("DELETE", pin_path, token)
    assert s == 200, body
