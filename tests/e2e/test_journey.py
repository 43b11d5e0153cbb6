"""The user journey of the foundation, end to end over HTTPS through the edge."""

from __future__ import annotations

import asyncio

from .conftest import PASSWORD, Api


async def test_sign_up_login_and_me(api: Api) -> None:
    email = await api.sign_up()
    tokens = await api.login(email)
    assert tokens["tokenType"] == "Bearer" and tokens["expiresIn"] <= 600
    status, me, _ = await api.call("GET", "/v1/users/me", tokens["accessToken"])
    assert status == 200 and me["email"] == email
    assert "password" not in str(me).lower()


async def test_unknown_email_and_wrong_password_look_the_same(api: Api) -> None:
    email = await api.sign_up()
    s1, b1, _ = await api.call(
        "POST", "/v1/auth:login", json={"email": email, "password": "wrong password 123"}
    )
    s2, b2, _ = await api.call(
        "POST", "/v1/auth:login", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    assert s1 == s2 == 401
    assert (b1["code"], b1["detail"], b1["title"]) == (b2["code"], b2["detail"], b2["title"])


async def test_refresh_rotates_and_reuse_revokes_the_family(api: Api) -> None:
    email = await api.sign_up()
    first = await api.login(email)
    s, b, _ = await api.call(
        "POST", "/v1/auth:refresh", json={"refreshToken": first["refreshToken"]}
    )
    assert s == 200
    second = b["tokens"]
    assert second["refreshToken"] != first["refreshToken"]
    s, b, _ = await api.call(
        "POST", "/v1/auth:refresh", json={"refreshToken": second["refreshToken"]}
    )
    assert s == 200
    third = b["tokens"]
    # replaying the first (a grandparent, not the parent within grace) is theft: the family dies
    s, b, _ = await api.call(
        "POST", "/v1/auth:refresh", json={"refreshToken": first["refreshToken"]}
    )
    assert s == 401
    s, b, _ = await api.call(
        "POST", "/v1/auth:refresh", json={"refreshToken": third["refreshToken"]}
    )
    assert s == 401, "the newest token of a revoked family must fail too"


async def test_concurrent_refreshes_never_fork_or_fail(api: Api) -> None:
    email = await api.sign_up()
    tokens = await api.login(email)
    results = await asyncio.gather(
        *[
            api.call("POST", "/v1/auth:refresh", json={"refreshToken": tokens["refreshToken"]})
            for _ in range(5)
        ]
    )
    statuses = [r[0] for r in results]
    assert all(s < 500 for s in statuses), statuses
    children = {r[1]["tokens"]["refreshToken"] for r in results if r[0] == 200}
    assert len(children) == 1, "one family, one child"
    # the family is intact: the child still refreshes
    s, _, _ = await api.call("POST", "/v1/auth:refresh", json={"refreshToken": children.pop()})
    assert s == 200


async def test_logout_and_sessions(api: Api) -> None:
    email = await api.sign_up()
    a = await api.login(email)
    b = await api.login(email)
    s, body, _ = await api.call("GET", "/v1/users/me/sessions", a["accessToken"])
    assert s == 200 and len(body["sessions"]) == 2
    other = next(x for x in body["sessions"] if not x.get("current"))
    s, _, _ = await api.call("POST", f"/v1/{other['name']}:revoke", a["accessToken"], json={})
    assert s == 200
    s, _, _ = await api.call("POST", "/v1/auth:refresh", json={"refreshToken": b["refreshToken"]})
    assert s == 401
    s, _, _ = await api.call("POST", "/v1/auth:logout", a["accessToken"], json={})
    assert s == 200
    s, _, _ = await api.call("POST", "/v1/auth:refresh", json={"refreshToken": a["refreshToken"]})
    assert s == 401


async def test_change_password_revokes_other_sessions(api: Api) -> None:
    email = await api.sign_up()
    a = await api.login(email)
    b = await api.login(email)
    new = "another long passphrase 42"
    s, body, _ = await api.call(
        "POST",
        "/v1/users/me:changePassword",
        a["accessToken"],
        json={"currentPassword": "wrong one here", "newPassword": new},
    )
    assert (s, body["code"]) == (400, "INVALID_CURRENT_PASSWORD"), body
    s, body, _ = await api.call(
        "POST",
        "/v1/users/me:changePassword",
        a["accessToken"],
        json={"currentPassword": PASSWORD, "newPassword": new},
    )
    assert s == 200, body
    s, _, _ = await api.call("POST", "/v1/auth:refresh", json={"refreshToken": b["refreshToken"]})
    assert s == 401
    await api.login(email, new)


async def test_workspace_lifecycle_and_members(api: Api) -> None:
    _, owner, _ = await api.user()
    bob_email, bob, _ = await api.user()
    s, ws, _ = await api.call("POST", "/v1/workspaces", owner, json={"displayName": "Acme"})
    assert s == 200 and ws["callerRole"] == "ROLE_OWNER"
    name = ws["name"]
    s, listing, _ = await api.call("GET", "/v1/workspaces", owner)
    assert name in [w["name"] for w in listing["workspaces"]]
    s, upd, _ = await api.call(
        "PATCH",
        f"/v1/{name}?updateMask=displayName,mfaRequired",
        owner,
        json={"displayName": "Acme 2", "mfaRequired": False},
    )
    assert s == 200 and upd["displayName"] == "Acme 2"
    # bob is not a member yet: the workspace does not exist for him
    s, body, _ = await api.call("GET", f"/v1/{name}", bob)
    assert s == 404
    s, member, _ = await api.call(
        "POST", f"/v1/{name}/members", owner, json={"email": bob_email, "role": "ROLE_USER"}
    )
    assert s == 200, member
    s, _, _ = await api.call("GET", f"/v1/{name}", bob)
    assert s == 200
    s, body, _ = await api.call(
        "PATCH", f"/v1/{name}?updateMask=displayName", bob, json={"displayName": "x"}
    )
    assert s == 403 and body["code"] == "ROLE_TOO_LOW"
    s, member, _ = await api.call(
        "PATCH", f"/v1/{member['name']}?updateMask=role", owner, json={"role": "ROLE_ADMIN"}
    )
    assert s == 200 and member["role"] == "ROLE_ADMIN"
    # the role change takes effect on bob's very next request
    s, _, _ = await api.call(
        "PATCH", f"/v1/{name}?updateMask=displayName", bob, json={"displayName": "By Bob"}
    )
    assert s == 200
    s, ws2, _ = await api.call(
        "POST", f"/v1/{name}:transferOwnership", owner, json={"newOwner": member["name"]}
    )
    assert s == 200 and ws2["callerRole"] == "ROLE_ADMIN"
    s, body, _ = await api.call("DELETE", f"/v1/{name}", owner)
    assert s == 403, "the former owner is an admin now"
    s, body, _ = await api.call("DELETE", f"/v1/{name}", bob)
    assert s == 200 and body["state"] == "WORKSPACE_STATE_DELETED"
    s, body, _ = await api.call("GET", f"/v1/{name}/members", bob)
    assert s == 404 and body["code"] == "WORKSPACE_DELETED"
    s, body, _ = await api.call("POST", f"/v1/{name}:undelete", bob, json={})
    assert s == 200 and body["state"] == "WORKSPACE_STATE_ACTIVE"


async def test_last_owner_can_never_leave(api: Api) -> None:
    _, owner, _ = await api.user()
    s, ws, _ = await api.call("POST", "/v1/workspaces", owner, json={"displayName": "Solo"})
    s, members, _ = await api.call("GET", f"/v1/{ws['name']}/members", owner)
    me = members["members"][0]["name"]
    s, body, _ = await api.call("DELETE", f"/v1/{me}", owner)
    assert s == 400 and body["code"] == "LAST_OWNER"
    s, body, _ = await api.call(
        "PATCH", f"/v1/{me}?updateMask=role", owner, json={"role": "ROLE_ADMIN"}
    )
    assert s == 400 and body["code"] == "LAST_OWNER"
