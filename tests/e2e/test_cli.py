"""The ``railguard`` CLI end to end, as a user runs it: a real process, a temporary
XDG_CONFIG_HOME, the real stack."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import click
import pytest
from devstack import Stack
from railguard import AsyncClient, Client
from railguard.cli.main import cli
from testkit.totp import secret_from_uri, totp_code, wait_for_fresh_step

from .conftest import PASSWORD

CREDENTIAL = "sk-proj-" + secrets.token_hex(20)


def _railguard(
    stack: Stack, home: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "railguard", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("RAILGUARD_")},
                "XDG_CONFIG_HOME": str(home),
                "RAILGUARD_URL": stack.url,
                "RAILGUARD_CA_FILE": str(stack.certs / "ca.crt"),
                **(env or {}),
            },
        )
    except subprocess.TimeoutExpired as exc:  # say what the CLI and the stack were doing
        pytest.fail(
            f"railguard {' '.join(args)} ran for 60 s\nstdout: {exc.stdout!r}\n"
            f"stderr: {exc.stderr!r}\n{stack.log_tails()}"
        )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_login_workspace_key_whoami_credentials_audit(stack: Stack, tmp_path: Path) -> None:
    home = tmp_path / "config"
    email = f"cli{secrets.token_hex(4)}@example.com"
    with Client(stack.url, verify=str(stack.certs / "ca.crt")) as rg:
        rg.sign_up(email, PASSWORD)

    out = _ok(
        _railguard(stack, home, "login", "--email", email, "--password-stdin", stdin=PASSWORD)
    )
    assert f"logged in as {email}" in out and PASSWORD not in out
    session = home / "railguard" / "session.json"
    assert stat.S_IMODE(session.stat().st_mode) == 0o600
    assert stat.S_IMODE(session.parent.stat().st_mode) == 0o700
    assert json.loads(session.read_text())["tokens"]["refresh_token"]

    ws = json.loads(_ok(_railguard(stack, home, "--json", "workspaces", "create", "Acme")))
    assert ws["callerRole"] == "ROLE_OWNER"
    assert ws["name"] in _ok(_railguard(stack, home, "workspaces", "list"))

    created = _railguard(
        stack, home, "keys", "create", ws["name"], "--name", "ci", "--scope", "workspaces:read"
    )
    out = _ok(created)
    secret_lines = [line for line in out.splitlines() if line.startswith("secret: ")]
    assert len(secret_lines) == 1 and "shown once" in out
    key = secret_lines[0].removeprefix("secret: ")
    assert key.startswith("rg_live_") and out.count(key) == 1
    listed = _ok(_railguard(stack, home, "--json", "keys", "list", ws["name"]))
    assert key not in listed and json.loads(listed)[0]["displayName"] == "ci"

    who = json.loads(
        _ok(_railguard(stack, home, "--json", "whoami", env={"RAILGUARD_API_KEY": key}))
    )
    assert (who["type"], who["workspace"], who["scopes"]) == (
        "apiKey",
        ws["name"],
        ["workspaces:read"],
    )
    assert key not in _ok(_railguard(stack, home, "whoami", env={"RAILGUARD_API_KEY": key}))

    # members: add a signed-up user, change the role, remove
    with Client(stack.url, verify=str(stack.certs / "ca.crt")) as rg:
        rg.sign_up(bob := f"bob{secrets.token_hex(4)}@example.com", PASSWORD)
    added = json.loads(_ok(_railguard(stack, home, "--json", "members", "add", ws["name"], bob)))
    assert added["role"] == "ROLE_USER"
    member = added["name"]
    assert "ROLE_ADMIN" in _ok(
        _railguard(stack, home, "members", "set-role", ws["name"], member, "admin")
    )
    assert bob in _ok(_railguard(stack, home, "members", "list", ws["name"]))
    _ok(_railguard(stack, home, "members", "remove", ws["name"], member.rsplit("/", 1)[1]))
    assert bob not in _ok(_railguard(stack, home, "members", "list", ws["name"]))

    # rotate prints the new secret once; revoke refuses the key from then on
    key_name = json.loads(listed)[0]["name"]
    rotated = _ok(_railguard(stack, home, "keys", "rotate", key_name, "--grace", "0"))
    (new_secret,) = [
        x.removeprefix("new secret: ") for x in rotated.splitlines() if x.startswith("new secret: ")
    ]
    assert new_secret != key and rotated.count(new_secret) == 1
    key_id = key_name.rsplit("/", 1)[1]
    assert "API_KEY_STATE_REVOKED" in _ok(
        _railguard(stack, home, "keys", "revoke", key_id, "-w", ws["name"])
    )
    dead = _railguard(stack, home, "whoami", env={"RAILGUARD_API_KEY": new_secret})
    assert dead.returncode == 1 and dead.stderr.startswith("error: KEY_REVOKED")

    # the value comes from stdin: it is neither in argv nor anywhere in the output
    argv = ["credentials", "create", ws["name"], "--name", "OpenAI", "--provider", "openai"]
    made = _railguard(stack, home, *argv, stdin=CREDENTIAL + "\n")
    assert made.returncode == 0, made.stderr
    assert CREDENTIAL not in made.stdout + made.stderr and CREDENTIAL not in argv
    assert "sk-proj-" in made.stdout and "..." in made.stdout  # masked
    creds = json.loads(_ok(_railguard(stack, home, "--json", "credentials", "list", ws["name"])))
    assert [c["displayName"] for c in creds] == ["OpenAI"] and CREDENTIAL not in json.dumps(creds)
    refused = _railguard(stack, home, *argv, "--value", CREDENTIAL)
    assert refused.returncode == 2, "there is no way to pass the value on the command line"

    events = json.loads(_ok(_railguard(stack, home, "--json", "audit", "list", ws["name"])))
    assert {"workspace.create", "apiKey.create", "credential.create"} <= {
        e["action"] for e in events
    }
    assert json.loads(_ok(_railguard(stack, home, "--json", "audit", "verify", ws["name"])))["ok"]
    streamed = _ok(_railguard(stack, home, "--json", "audit", "stream", ws["name"], "--count", "1"))
    assert json.loads(streamed.splitlines()[0])["action"] == "workspace.create"

    # errors: one line, the problem code, exit 1
    missing = _railguard(stack, home, "workspaces", "get", "0" * 32)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and missing.stderr.startswith("error: NOT_FOUND")

    # an access token about to expire is refreshed, and the new pair is stored (still 0600)
    data = json.loads(session.read_text())
    old_access = data["tokens"]["access_token"]
    data["tokens"]["access_expires_at"] = 1
    session.write_text(json.dumps(data))
    assert email not in _ok(_railguard(stack, home, "whoami"))  # whoami shows the user id
    assert json.loads(session.read_text())["tokens"]["access_token"] != old_access
    assert stat.S_IMODE(session.stat().st_mode) == 0o600

    assert "logged out" in _ok(_railguard(stack, home, "logout"))
    assert not session.exists()
    after = _railguard(stack, home, "whoami")
    assert after.returncode == 1 and after.stderr.startswith("error: NOT_LOGGED_IN")


async def test_login_asks_for_the_second_factor(stack: Stack, tmp_path: Path) -> None:
    email = f"mfa{secrets.token_hex(4)}@example.com"
    async with AsyncClient(stack.url, verify=str(stack.certs / "ca.crt")) as rg:
        await rg.sign_up(email, PASSWORD)
        await rg.login(email, PASSWORD)
        secret = secret_from_uri((await rg.mfa.begin_totp())["otpauthUri"])
        await wait_for_fresh_step()
        await rg.mfa.confirm_totp(totp_code(secret, steps=-1))
    home = tmp_path / "config"
    stdin = f"{PASSWORD}\n{totp_code(secret)}\n"
    login = _railguard(stack, home, "login", "--email", email, "--password-stdin", stdin=stdin)
    assert login.returncode == 0, login.stderr
    assert json.loads(_ok(_railguard(stack, home, "--json", "whoami")))["aal"] == "aal2"


def _paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            paths += _paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


@pytest.mark.parametrize("path", _paths(cli), ids=lambda p: " ".join(p) or "railguard")
def test_every_help_exits_zero(path: tuple[str, ...], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "railguard", *path, "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: railguard")
    assert list(tmp_path.iterdir()) == []
