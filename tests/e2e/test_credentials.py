"""Credentials and webhook triggers through the edge: values only ever masked, tokens only in
headers, a wrong token indistinguishable from an unknown trigger."""

from __future__ import annotations

import secrets

from .conftest import Api

VALUE = "sk-proj-abc" + secrets.token_hex(20) + "xyz9"


async def _workspace_with_user(api: Api) -> tuple[str, str, str]:
    _, owner, _ = await api.user()
    user_email, user, _ = await api.user()
    s, ws, _ = await api.call("POST", "/v1/workspaces", owner, json={"displayName": "Secrets"})
    assert s == 200
    s, _, _ = await api.call(
        "POST", f"/v1/{ws['name']}/members", owner, json={"email": user_email, "role": "ROLE_USER"}
    )
    assert s == 200
    return ws["name"], owner, user


async def test_credential_value_is_never_returned(api: Api) -> None:
    ws, owner, user = await _workspace_with_user(api)
    s, cred, _ = await api.call(
        "POST",
        f"/v1/{ws}/credentials",
        owner,
        json={"displayName": "OpenAI", "provider": "openai", "value": VALUE},
    )
    assert s == 200, cred
    assert cred["maskedValue"].startswith("sk-proj-abc") and cred["maskedValue"].endswith("xyz9")
    responses = [cred]
    for token in (owner, user):  # a User sees the masked list
        s, listing, _ = await api.call("GET", f"/v1/{ws}/credentials", token)
        assert s == 200
        responses.append(listing)
        s, got, _ = await api.call("GET", f"/v1/{cred['name']}", token)
        assert s == 200
        responses.append(got)
    s, body, _ = await api.call(
        "POST",
        f"/v1/{ws}/credentials",
        user,
        json={"displayName": "x", "provider": "openai", "value": VALUE},
    )
    assert (s, body["code"]) == (403, "ROLE_TOO_LOW")
    responses.append(body)
    assert not any(VALUE in str(r) or VALUE[11:40] in str(r) for r in responses)


async def test_bad_credential_input_is_400(api: Api) -> None:
    ws, owner, _ = await _workspace_with_user(api)
    for value, provider in [
        ("", "openai"),
        ("x" * 9000, "generic"),
        ("sk-proj-abc123456789", "no-such-provider"),
        ("not-an-openai-key-at-all", "openai"),
    ]:
        s, body, _ = await api.call(
            "POST",
            f"/v1/{ws}/credentials",
            owner,
            json={"displayName": "bad", "provider": provider, "value": value},
        )
        assert s == 400 and body["errors"], (provider, body)
        assert value[:20] not in str(body) or not value


async def test_webhook_trigger_lifecycle(api: Api) -> None:
    ws, owner, _ = await _workspace_with_user(api)
    s, created, _ = await api.call(
        "POST", f"/v1/{ws}/webhookTriggers", owner, json={"displayName": "deploys"}
    )
    assert s == 200, created
    token, path = created["token"], created["webhookTrigger"]["urlPath"]
    s, ok, _ = await api.call(
        "POST", path, json={"event": "push"}, headers={"X-Railguard-Webhook-Token": token}
    )
    assert s == 200, ok
    # wrong token ≡ unknown trigger
    s1, wrong, _ = await api.call(
        "POST", path, json={}, headers={"X-Railguard-Webhook-Token": "rgw_" + "A" * 43}
    )
    s2, unknown, _ = await api.call(
        "POST",
        "/v1/hooks/" + secrets.token_hex(8),
        json={},
        headers={"X-Railguard-Webhook-Token": token},
    )
    assert s1 == s2 == 404
    assert (wrong["code"], wrong["detail"]) == (unknown["code"], unknown["detail"])
    # a token in the URL is refused outright
    s, body, _ = await api.call("POST", f"{path}?token={token}", json={})
    assert s == 400 and body["code"] == "FIELD_NOT_ALLOWED_HERE"
    s, deliveries, _ = await api.call(
        "GET", f"/v1/{created['webhookTrigger']['name']}/deliveries", owner
    )
    assert s == 200 and len(deliveries["webhookDeliveries"]) == 1
    first = deliveries["webhookDeliveries"][0]
    assert first["contentType"].startswith("application/json") and int(first["sizeBytes"]) == len(
        b'{"event":"push"}'
    )
    assert first["sourceIp"] == "127.0.0.1"
    # rotation: the old token stops, the new one works; neither is ever listed
    s, rotated, _ = await api.call(
        "POST", f"/v1/{created['webhookTrigger']['name']}:rotateToken", owner, json={}
    )
    assert s == 200
    s, _, _ = await api.call("POST", path, json={}, headers={"X-Railguard-Webhook-Token": token})
    assert s == 404
    s, _, _ = await api.call(
        "POST", path, json={}, headers={"X-Railguard-Webhook-Token": rotated["token"]}
    )
    assert s == 200
    s, listing, _ = await api.call("GET", f"/v1/{ws}/webhookTriggers", owner)
    assert token not in str(listing) and rotated["token"] not in str(listing)
