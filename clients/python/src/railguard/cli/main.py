"""``railguard``: log in, manage workspaces, members, API keys, credentials, read the audit log.

Global options come before the command: ``railguard [--url URL] [--ca-file PEM] [--json] CMD``.
``RAILGUARD_URL`` and ``RAILGUARD_CA_FILE`` set the same; ``RAILGUARD_API_KEY`` authenticates
with an API key instead of the stored session (a key is never taken from the command line).
Errors print one line, ``error: <CODE>: <detail> (request <id>)``, and exit 1 (2 for usage).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from railguard import __version__
from railguard.cli import config, output
from railguard.cli.admin import admin
from railguard.client import Client
from railguard.errors import MfaRequired, RailguardError
from railguard.session import Tokens

__all__ = ["cli", "main"]

DEFAULT_URL = "https://localhost:8443"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    url: str
    ca_file: str
    as_json: bool
    api_key: str
    stored: config.StoredSession | None
    _client: Client | None = field(default=None, repr=False)

    def client(self, *, need_auth: bool = True) -> Client:
        if self._client is not None:
            return self._client
        tokens = None
        if not self.api_key and self.stored is not None and self.stored.url == self.url:
            tokens = self.stored.tokens
        if need_auth and not self.api_key and tokens is None:
            raise RailguardError(401, "NOT_LOGGED_IN", f"run `railguard login` for {self.url}")
        self._client = Client(
            self.url,
            api_key=self.api_key or None,
            tokens=tokens,
            verify=self.ca_file or True,
            on_tokens=self.store,
        )
        return self._client

    def store(self, tokens: Tokens) -> None:
        email = self.stored.email if self.stored else ""
        self.stored = config.StoredSession(self.url, self.ca_file, email, tokens)
        config.save_session(self.stored)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


pass_state = click.make_pass_decorator(State)


def fails_cleanly(fn: F) -> F:
    """Any RailguardError becomes one line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RailguardError as exc:
            detail = f": {exc.detail}" if exc.detail else ""
            rid = f" (request {exc.request_id})" if exc.request_id else ""
            click.echo(f"error: {exc.code}{detail}{rid}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="RAILGUARD_URL", default=None, help="The edge's HTTPS URL.")
@click.option("--ca-file", envvar="RAILGUARD_CA_FILE", default=None, help="CA bundle (PEM).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.version_option(version=__version__, prog_name="railguard")
@click.pass_context
def cli(ctx: click.Context, url: str | None, ca_file: str | None, as_json: bool) -> None:
    """Railguard from the command line (user and operator commands)."""
    stored = config.load_session()
    state = State(
        url=(url or (stored.url if stored else "") or DEFAULT_URL).rstrip("/"),
        # stored absolute: the session must work from any directory
        ca_file=os.path.abspath(ca_file) if ca_file else (stored.ca_file if stored else ""),
        as_json=as_json,
        api_key=os.environ.get("RAILGUARD_API_KEY", ""),
        stored=stored,
    )
    ctx.obj = state
    ctx.call_on_close(state.close)


# ---- session -------------------------------------------------------------------------------


def _read_secret(label: str, from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return str(click.prompt(label, hide_input=True))


@cli.command()
@click.option("--email", prompt=True, help="Your account's email.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password (then any MFA code) from stdin."
)
@pass_state
@fails_cleanly
def login(state: State, email: str, password_stdin: bool) -> None:
    """Sign in; the session is stored (0600) in the config folder and refreshed by itself."""
    state.stored = config.StoredSession(state.url, state.ca_file, email, None)
    client = state.client(need_auth=False)
    password = _read_secret("Password", password_stdin)
    try:
        client.login(email, password)
    except MfaRequired as challenge:
        code = _read_secret("Authenticator code (or a recovery code)", password_stdin)
        if len(code) == 6 and code.isdigit():
            client.verify_mfa(challenge.challenge_token, totp_code=code)
        else:
            client.verify_mfa(challenge.challenge_token, recovery_code=code)
    path = config.session_path()
    if state.as_json:
        output.emit_one({"email": email, "url": state.url, "sessionFile": str(path)}, True)
    else:
        click.echo(f"logged in as {email} at {state.url} (session in {path})")


@cli.command()
@pass_state
@fails_cleanly
def logout(state: State) -> None:
    """End the session at the server and forget it here."""
    if state.stored is not None and state.stored.tokens is not None:
        try:
            state.client().logout()
        except RailguardError as exc:
            if exc.status != 401:  # an already-dead session is fine to forget
                raise
    removed = config.delete_session()
    click.echo("logged out" if removed else "not logged in")


@cli.command()
@pass_state
@fails_cleanly
def whoami(state: State) -> None:
    """Who the edge says you are: user or API key, scopes, rate limits."""
    me = state.client().whoami()
    if state.as_json:
        output.emit_one(me, True)
        return
    output.emit_one({k: v for k, v in me.items() if k != "rateLimits"}, False)


# ---- workspaces ----------------------------------------------------------------------------

WS_COLUMNS = ["name", "displayName", "callerRole", "state", "plan"]


@cli.group()
def workspaces() -> None:
    """Workspaces you belong to."""


@workspaces.command("list")
@click.option("--show-deleted", is_flag=True)
@pass_state
@fails_cleanly
def workspaces_list(state: State, show_deleted: bool) -> None:
    output.emit(
        state.client().workspaces.list(show_deleted=show_deleted), WS_COLUMNS, state.as_json
    )


@workspaces.command("create")
@click.argument("display_name")
@click.option("--mfa-required/--no-mfa-required", default=None)
@pass_state
@fails_cleanly
def workspaces_create(state: State, display_name: str, mfa_required: bool | None) -> None:
    ws = state.client().workspaces.create(display_name, mfa_required=mfa_required)
    output.emit_one(ws, state.as_json)


@workspaces.command("get")
@click.argument("workspace")
@pass_state
@fails_cleanly
def workspaces_get(state: State, workspace: str) -> None:
    output.emit_one(state.client().workspaces.get(workspace), state.as_json)


@workspaces.command("delete")
@click.argument("workspace")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
@fails_cleanly
def workspaces_delete(state: State, workspace: str, yes: bool) -> None:
    """Soft delete (restorable within the workspace's retention window)."""
    if not yes:
        click.confirm(f"delete {workspace}?", abort=True)
    output.emit_one(state.client().workspaces.delete(workspace), state.as_json)


# ---- members -------------------------------------------------------------------------------

ROLES = click.Choice(["user", "admin", "owner"], case_sensitive=False)


def _role(value: str) -> str:
    return f"ROLE_{value.upper()}"


@cli.group()
def members() -> None:
    """Members of a workspace and their roles."""


@members.command("list")
@click.argument("workspace")
@pass_state
@fails_cleanly
def members_list(state: State, workspace: str) -> None:
    rows = state.client().members.list(workspace)
    output.emit(rows, ["name", "email", "role", "createTime"], state.as_json)


@members.command("add")
@click.argument("workspace")
@click.argument("email")
@click.option("--role", type=ROLES, default="user", show_default=True)
@pass_state
@fails_cleanly
def members_add(state: State, workspace: str, email: str, role: str) -> None:
    output.emit_one(state.client().members.add(workspace, email, _role(role)), state.as_json)


@members.command("set-role")
@click.argument("workspace")
@click.argument("member")
@click.argument("role", type=ROLES)
@pass_state
@fails_cleanly
def members_set_role(state: State, workspace: str, member: str, role: str) -> None:
    """MEMBER is a user id or a member name."""
    result = state.client().members.set_role(workspace, member, _role(role))
    output.emit_one(result, state.as_json)


@members.command("remove")
@click.argument("workspace")
@click.argument("member")
@pass_state
@fails_cleanly
def members_remove(state: State, workspace: str, member: str) -> None:
    state.client().members.remove(workspace, member)
    click.echo(f"removed {member}")


# ---- API keys ------------------------------------------------------------------------------

KEY_COLUMNS = ["name", "displayName", "prefix", "state", "scopes", "lastUsedTime"]


def _key_name(key: str, workspace: str | None) -> str:
    if key.startswith("workspaces/"):
        return key
    if not workspace:
        raise click.UsageError("give the key's full name, or its id with --workspace")
    ws = workspace if workspace.startswith("workspaces/") else f"workspaces/{workspace}"
    return f"{ws}/apiKeys/{key}"


def _show_secret(result: Mapping[str, Any], state: State, what: str) -> None:
    if state.as_json:
        output.emit_one(result, True)
        return
    output.emit_one(result["apiKey"], False, KEY_COLUMNS)
    click.echo(f"\n{what}: {result['key']}")
    click.echo("This secret is shown once and cannot be retrieved again; store it now.")


@cli.group()
def keys() -> None:
    """API keys of a workspace."""


@keys.command("list")
@click.argument("workspace")
@pass_state
@fails_cleanly
def keys_list(state: State, workspace: str) -> None:
    output.emit(state.client().api_keys.list(workspace), KEY_COLUMNS, state.as_json)


@keys.command("create")
@click.argument("workspace")
@click.option("--name", "display_name", required=True, help="A label, e.g. ci.")
@click.option("--scope", "scopes", multiple=True, required=True, help="Repeat per scope.")
@click.option("--test", "test_env", is_flag=True, help="A rg_test_ key instead of rg_live_.")
@click.option("--cidr", "cidrs", multiple=True, help="Allowed client networks (repeat).")
@click.option("--origin", "origins", multiple=True, help="Allowed browser origins (repeat).")
@click.option("--expire-time", default=None, help="RFC 3339, e.g. 2027-01-01T00:00:00Z.")
@pass_state
@fails_cleanly
def keys_create(
    state: State,
    workspace: str,
    display_name: str,
    scopes: tuple[str, ...],
    test_env: bool,
    cidrs: tuple[str, ...],
    origins: tuple[str, ...],
    expire_time: str | None,
) -> None:
    """Create a key; its secret is printed once."""
    result = state.client().api_keys.create(
        workspace,
        display_name,
        scopes,
        environment="ENVIRONMENT_TEST" if test_env else "ENVIRONMENT_LIVE",
        allowed_cidrs=cidrs,
        allowed_origins=origins,
        expire_time=expire_time,
    )
    _show_secret(result, state, "secret")


@keys.command("rotate")
@click.argument("key")
@click.option("--workspace", "-w", default=None)
@click.option(
    "--grace", "grace", type=int, default=None, help="Seconds the old secret keeps working."
)
@pass_state
@fails_cleanly
def keys_rotate(state: State, key: str, workspace: str | None, grace: int | None) -> None:
    """Issue a new secret for KEY (printed once)."""
    name = _key_name(key, workspace)
    result = state.client().api_keys.rotate(name, grace_period_seconds=grace)
    _show_secret(result, state, "new secret")


@keys.command("revoke")
@click.argument("key")
@click.option("--workspace", "-w", default=None)
@pass_state
@fails_cleanly
def keys_revoke(state: State, key: str, workspace: str | None) -> None:
    """Refuse KEY everywhere from now on."""
    result = state.client().api_keys.revoke(_key_name(key, workspace))
    output.emit_one(result, state.as_json, None if state.as_json else KEY_COLUMNS)


# ---- credentials ---------------------------------------------------------------------------

CRED_COLUMNS = ["name", "displayName", "provider", "maskedValue", "state", "lastUsedTime"]


@cli.group()
def credentials() -> None:
    """Third-party credentials; values are only ever shown masked."""


@credentials.command("list")
@click.argument("workspace")
@pass_state
@fails_cleanly
def credentials_list(state: State, workspace: str) -> None:
    output.emit(state.client().credentials.list(workspace), CRED_COLUMNS, state.as_json)


@credentials.command("create")
@click.argument("workspace")
@click.option("--name", "display_name", required=True)
@click.option(
    "--provider", required=True, help="openai, anthropic, aws, azure_openai, google or generic."
)
@pass_state
@fails_cleanly
def credentials_create(state: State, workspace: str, display_name: str, provider: str) -> None:
    """The value is read from stdin when piped, else from a hidden prompt; never from argv."""
    if sys.stdin.isatty():
        value = str(click.prompt("Value", hide_input=True, confirmation_prompt=False))
    else:
        value = sys.stdin.read().strip("\r\n")
    if not value:
        raise click.UsageError("the credential value is empty")
    result = state.client().credentials.create(workspace, display_name, provider, value)
    output.emit_one(result, state.as_json, None if state.as_json else CRED_COLUMNS)


@credentials.command("delete")
@click.argument("credential")
@pass_state
@fails_cleanly
def credentials_delete(state: State, credential: str) -> None:
    """Soft delete CREDENTIAL (its full name)."""
    result = state.client().credentials.delete(credential)
    output.emit_one(result, state.as_json, None if state.as_json else CRED_COLUMNS)


# ---- audit ---------------------------------------------------------------------------------

AUDIT_COLUMNS = ["sequence", "eventTime", "actor", "action", "target", "outcome"]


@cli.group()
def audit() -> None:
    """A workspace's hash-chained audit log."""


@audit.command("list")
@click.argument("workspace")
@click.option("--limit", type=int, default=None, help="At most this many events.")
@pass_state
@fails_cleanly
def audit_list(state: State, workspace: str, limit: int | None) -> None:
    events: Iterator[Mapping[str, Any]] = state.client().audit.list(workspace)
    if limit is not None:
        events = (e for _, e in zip(range(limit), events, strict=False))
    output.emit(events, AUDIT_COLUMNS, state.as_json)


@audit.command("verify")
@click.argument("workspace")
@pass_state
@fails_cleanly
def audit_verify(state: State, workspace: str) -> None:
    """Recompute the hash chain; exit 1 if it is broken."""
    result = state.client().audit.verify(workspace)
    output.emit_one(result, state.as_json)
    if not result.get("ok"):
        sys.exit(1)


@audit.command("stream")
@click.argument("workspace")
@click.option("--after", type=int, default=0, help="Start after this sequence number.")
@click.option("--count", type=int, default=None, help="Stop after this many events.")
@pass_state
@fails_cleanly
def audit_stream(state: State, workspace: str, after: int, count: int | None) -> None:
    """Follow the log live (WSS); one line per event. Ctrl-C stops."""
    import json

    seen = 0
    stream = state.client().audit.stream(workspace, after=after)
    try:
        for event in stream:
            if state.as_json:
                click.echo(json.dumps(event, separators=(",", ":")))
            else:
                click.echo("  ".join(output._cell(event.get(c)) for c in AUDIT_COLUMNS))
            seen += 1
            if count is not None and seen >= count:
                break
    except KeyboardInterrupt:
        pass
    finally:
        stream.close()  # type: ignore[attr-defined]


cli.add_command(admin)


def main() -> None:
    cli(prog_name="railguard")


if __name__ == "__main__":
    main()
