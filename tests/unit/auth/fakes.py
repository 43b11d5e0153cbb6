"""In-memory fakes of the auth service's ports (``auth_service.ports``), for the use-case tests.

One :class:`FakeStore` holds every table; a :class:`FakeUnitOfWork` works on a copy of it and
publishes the copy on ``commit`` (what is not committed is dropped, like a rollback). Writes
that the SQL repositories make atomic (compare-and-set, single use) are checked the same way.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from auth_service.domain import (
    DeploymentPin,
    MfaChallenge,
    RefreshRecord,
    Session,
    SigningKey,
    ThrottleState,
    TotpFactor,
    User,
)
from auth_service.domain.account_token import AccountToken
from servicekit.audit import AuditEvent
from servicekit.errors import AlreadyExists
from servicekit.mail import Mail


@dataclass
class RecoveryRow:
    user_id: str
    code_hash: str
    used_at: dt.datetime | None = None


@dataclass
class Tables:
    users: dict[str, User] = field(default_factory=dict)
    purged: set[str] = field(default_factory=set)
    sessions: dict[str, Session] = field(default_factory=dict)
    refresh: dict[str, RefreshRecord] = field(default_factory=dict)
    keys: dict[str, SigningKey] = field(default_factory=dict)
    totp: dict[str, TotpFactor] = field(default_factory=dict)  # by user id: one factor each
    recovery: dict[str, RecoveryRow] = field(default_factory=dict)
    challenges: dict[str, MfaChallenge] = field(default_factory=dict)
    throttle: dict[str, ThrottleState] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    pins: dict[tuple[str, str], DeploymentPin] = field(default_factory=dict)
    tokens: dict[str, AccountToken] = field(default_factory=dict)
    events: list[AuditEvent] = field(default_factory=list)
    mails: list[Mail] = field(default_factory=list)


class FakeStore:
    """The committed state, and how many transactions committed."""

    def __init__(self) -> None:
        self.tables = Tables()
        self.commits = 0

    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)


class FakeUsers:
    def __init__(self, t: Tables) -> None:
        self.t = t

    async def get(self, user_id: str) -> User | None:
        return self.t.users.get(user_id)

    async def by_email(self, email: str) -> User | None:
        return next((u for u in self.t.users.values() if u.email == email), None)

    async def add(self, user: User) -> None:
        if await self.by_email(user.email) is not None or user.id in self.t.users:
            raise AlreadyExists("that email address is already registered", reason="EMAIL_TAKEN")
        self.t.users[user.id] = user

    async def replace_password_hash(
        self, user_id: str, expected: str, new: str, now: dt.datetime
    ) -> bool:
        user = self.t.users.get(user_id)
        if user is None or user.password_hash != expected:
            return False
        user.password_hash, user.updated_at = new, now
        return True

    async def set_password_hash(self, user_id: str, new: str, now: dt.datetime) -> bool:
        user = self.t.users.get(user_id)
        if user is None or user.deleted:
            return False
        user.password_hash, user.updated_at = new, now
        return True

    async def mark_verified(self, user_id: str, email: str, now: dt.datetime) -> bool:
        user = self.t.users.get(user_id)
        if user is None or user.deleted or user.email != email:
            return False
        user.email_verified_at, user.updated_at = now, now
        return True

    async def change_email(self, user_id: str, email: str, now: dt.datetime) -> bool:
        user = self.t.users.get(user_id)
        if user is None or user.deleted:
            return False
        if any(u.email == email for u in self.t.users.values() if u.id != user_id):
            return False
        user.email, user.email_verified_at, user.updated_at = email, now, now
        return True

    async def deleted_before(self, cutoff: dt.datetime, limit: int) -> list[str]:
        due = [
            u
            for u in self.t.users.values()
            if u.deleted_at is not None and u.deleted_at < cutoff and u.id not in self.t.purged
        ]
        return [u.id for u in sorted(due, key=lambda u: u.deleted_at or cutoff)][:limit]

    async def erase(self, user_id: str, now: dt.datetime) -> bool:
        user = self.t.users.get(user_id)
        if user is None or user_id in self.t.purged:
            return False
        user.email, user.display_name = f"{user_id}@deleted.invalid", ""
        user.password_hash, user.email_verified_at, user.updated_at = "!", None, now  # noqa: S105
        self.t.purged.add(user_id)
        mine = {s for s, v in self.t.sessions.items() if v.user_id == user_id}
        self.t.refresh = {k: r for k, r in self.t.refresh.items() if r.session_id not in mine}
        self.t.sessions = {k: s for k, s in self.t.sessions.items() if k not in mine}
        self.t.totp.pop(user_id, None)
        self.t.recovery = {k: r for k, r in self.t.recovery.items() if r.user_id != user_id}
        self.t.challenges = {k: c for k, c in self.t.challenges.items() if c.user_id != user_id}
        self.t.tokens = {k: x for k, x in self.t.tokens.items() if x.user_id != user_id}
        return True

    async def mark_deleted(self, user_id: str, now: dt.datetime) -> None:
        user = self.t.users.get(user_id)
        if user is not None:
            user.deleted_at, user.updated_at = now, now


class FakeSessions:
    def __init__(self, t: Tables) -> None:
        self.t = t

    async def get(self, session_id: str) -> Session | None:
        return self.t.sessions.get(session_id)

    async def add(self, s: Session) -> None:
        self.t.sessions[s.id] = s

    async def save(self, s: Session) -> None:
        self.t.sessions[s.id] = s

    async def revoke_all(
        self, user_id: str, now: dt.datetime, reason: str, *, keep: str = "", aal: str = ""
    ) -> int:
        count = 0
        for s in self.t.sessions.values():
            if s.user_id == user_id and s.revoked_at is None and s.id != keep:
                if not aal or s.aal == aal:
                    s.revoked_at, s.revoke_reason = now, reason
                    count += 1
        return count

    async def list_active(
        self, user_id: str, now: dt.datetime, after: tuple[dt.datetime, str] | None, limit: int
    ) -> list[Session]:
        rows = [
            s
            for s in self.t.sessions.values()
            if s.user_id == user_id
            and s.revoked_at is None
            and s.idle_expires_at > now
            and s.absolute_expires_at > now
            and (after is None or (s.created_at, s.id) < after)
        ]
        return sorted(rows, key=lambda s: (s.created_at, s.id), reverse=True)[:limit]


class FakeRefreshTokens:
    def __init__(self, t: Tables) -> None:
        self.t = t

    async def get(self, token_id: str) -> RefreshRecord | None:
        return self.t.refresh.get(token_id)

    async def by_hash(self, digest: str) -> RefreshRecord | None:
        return next((r for r in self.t.refresh.values() if r.hash == digest), None)

    async def add(self, record: RefreshRecord) -> None:
        self.t.refresh[record.id] = record

    async def claim(
        self, token_id: str, now: dt.datetime, child_id: str, sealed_child: str
    ) -> bool:
        record = self.t.refresh.get(token_id)
        if record is None or record.rotated_at is not None:
            return False
        record.rotated_at, record.child_id, record.sealed_child = now, child_id, sealed_child
        return True

    async def forget_grace_secrets(self, rotated_before: dt.datetime, session_id: str = "") -> int:
        count = 0
        for r in self.t.refresh.values():
            if r.sealed_child is not None and r.rotated_at is not None:
                if r.rotated_at < rotated_before and (not session_id or r.session_id == session_id):
                    r.sealed_child = None
                    count += 1
        return count


class FakeSigningKeys:
    def __init__(self, t: Tables) -> None:
        self.t = t

    async def all(self) -> list[SigningKey]:
        return sorted(self.t.keys.values(), key=lambda k: (k.created_at, k.kid))

    async def current(self) -> SigningKey | None:
        live = [k for k in self.t.keys.values() if k.state.value == "current"]
        return max(live, key=lambda k: (k.activated_at or k.created_at, k.kid), default=None)

    async def add(self, key: SigningKey) -> None:
        self.t.keys[key.kid] = key

    async def save(self, key: SigningKey) -> None:
        self.t.keys[key.kid] = key

    async def remove(self, kid: str) -> None:
        self.t.keys.pop(kid, None)


class FakeTotp:
    def __init__(self, t: Tables) -> None:
        self.t = t

    async def for_user(self, user_id: str) -> TotpFactor | None:
        return self.t.totp.get(user_id)

    async def has_confirmed(self, user_id: str) -> bool:
        factor = self.t.totp.get(user_id)
        return factor is not None and factor.confirmed

    async def replace_pending(self, factor: TotpFactor) -> bool:
        existing = self.t.totp.get(factor.user_id)
        if existing is not None and existing.confirmed:
            return False
        self.t.totp[factor.user_id] = factor
        return True

    def _by_id(self, factor_id: str) -> TotpFactor | None:
        return next((f for f in self.t.totp.values() if f.id == factor_id), None)

    async def confirm(self, factor_id: str, step: int, now: dt.datetime) -> bool:
        factor = self._by_id(factor_id)
        if factor is None or factor.confirmed or factor.last_step >= step:
            return False
        factor.confirmed_at, factor.last_step = now, step
        return True

    async def consume_step(self, factor_id: str, step: int) -> bool:
        factor = self._by_id(factor_id)
        if factor is None or not factor.confirmed or factor.last_step >= step:
            return False
        factor.last_step = step
        return True

    async def remove(self, user_id: str) -> int:
        return 1 if self.t.totp.pop(user_id, None) is not None else 0


class FakeRecoveryCodes:
    def __init__(self, t: Tables) -> None:
        self.t = t

    async def replace(
        self, user_id: str, hashes: list[str], now: dt.datetime, new_id: Callable[[], str]
    ) -> None:
        await self.remove(user_id)
        for digest in hashes:
            self.t.recovery[new_id()] = RecoveryRow(user_id, digest)

    async def consume(self, user_id: str, digest: str, now: dt.datetime) -> bool:
        for row in self.t.recovery.values():
            if row.user_id == user_id and row.code_hash == digest and row.used_at is None:
                row.used_at = now
                return True
        return False

    async def remaining(self, user_id: str) -> int:
        return sum(1 for r in self.t.recovery.values() if r.user_id == user_id and not r.used_at)

    async def remove(self, user_id: str) -> None:
        self.t.recovery = {k: r for k, r in self.t.recovery.items() if r.user_id != user_id}


class FakeChallenges:
    def __init__(self, t: Tables) -> None:
        self.t = t

    async def add(self, c: MfaChallenge) -> None:
        self.t.challenges[c.id] = c

    async def by_hash(self, digest: str) -> MfaChallenge | None:
        return next((c for c in self.t.challenges.values() if c.token_hash == digest), None)

    async def count_attempt(self, challenge_id: str, now: dt.datetime, max_attempts: int) -> bool:
        c = self.t.challenges.get(challenge_id)
        if c is None or c.consumed_at is not None or c.expires_at <= now:
            return False
        if c.attempts >= max_attempts:
            return False
        c.attempts += 1
        return True

    async def consume(self, challenge_id: str, now: dt.datetime) -> bool:
        c = self.t.challenges.get(challenge_id)
        if c is None or c.consumed_at is not None or c.expires_at <= now:
            return False
        c.consumed_at = now
        return True

    async def consume_all(self, user_id: str, now: dt.datetime) -> int:
        count = 0
        for c in self.t.challenges.values():
            if c.user_id == user_id and c.consumed_at is None:
                c.consumed_at = now
                count += 1
        return count

    async def purge(self, before: dt.datetime) -> int:
        dead = [k for k, c in self.t.challenges.items() if c.expires_at < before]
        for k in dead:
            del self.t.challenges[k]
        return len(dead)


class FakeThrottle:
    def __init__(self, t: Tables) -> None:
        self.t = t

    async def get(self, key: str) -> ThrottleState | None:
        return self.t.throttle.get(key)

    async def store(self, key: str, expected: ThrottleState | None, new: ThrottleState) -> bool:
        current = self.t.throttle.get(key)
        if (current is None) != (expected is None):
            return False
        if current is not None and expected is not None and current.version != expected.version:
            return False
        self.t.throttle[key] = new
        return True

    async def reset(self, key: str) -> None:
        self.t.throttle.pop(key, None)

    async def refund(self, key: str) -> None:
        s = self.t.throttle.get(key)
        if s is not None:
            self.t.throttle[key] = dataclasses.replace(
                s,
                failures=max(s.failures - 1, 0),
                hour_failures=max(s.hour_failures - 1, 0),
                version=s.version + 1,
            )

    async def purge(self, idle_since: dt.datetime, now: dt.datetime) -> int:
        idle = [
            k
            for k, s in self.t.throttle.items()
            if s.last_failure_at is not None
            and s.last_failure_at < idle_since
            and (s.blocked_until is None or s.blocked_until < now)
        ]
        for k in idle:
            del self.t.throttle[k]
        return len(idle)


class FakeSecrets:
    def __init__(self, t: Tables) -> None:
        self.t = t

    async def get(self, name: str) -> str | None:
        return self.t.secrets.get(name)

    async def add_if_absent(self, name: str, sealed: str, now: dt.datetime) -> None:
        self.t.secrets.setdefault(name, sealed)


class FakePins:
    def __init__(self, t: Tables) -> None:
        self.t = t

    async def get(self, workspace_id: str, deployment_id: str) -> DeploymentPin | None:
        return self.t.pins.get((workspace_id, deployment_id))

    async def put(self, pin: DeploymentPin) -> None:
        existing = self.t.pins.get((pin.workspace_id, pin.deployment_id))
        if existing is None:
            self.t.pins[(pin.workspace_id, pin.deployment_id)] = pin
        else:
            existing.pin_hash, existing.updated_at = pin.pin_hash, pin.updated_at

    async def remove(self, workspace_id: str, deployment_id: str) -> bool:
        return self.t.pins.pop((workspace_id, deployment_id), None) is not None


class FakeTokens:
    def __init__(self, t: Tables) -> None:
        self.t = t

    async def add(self, t: AccountToken) -> None:
        self.t.tokens[t.id] = t

    async def by_hash(self, digest: str, purpose: str) -> AccountToken | None:
        return next(
            (x for x in self.t.tokens.values() if x.token_hash == digest and x.purpose == purpose),
            None,
        )

    async def consume(self, token_id: str, now: dt.datetime) -> bool:
        x = self.t.tokens.get(token_id)
        if x is None or x.consumed_at is not None or x.expires_at <= now:
            return False
        self.t.tokens[token_id] = dataclasses.replace(x, consumed_at=now)
        return True

    async def retire(self, user_id: str, purposes: tuple[str, ...], now: dt.datetime) -> int:
        live = [
            k
            for k, x in self.t.tokens.items()
            if x.user_id == user_id and x.purpose in purposes and x.consumed_at is None
        ]
        for k in live:
            self.t.tokens[k] = dataclasses.replace(self.t.tokens[k], consumed_at=now)
        return len(live)

    async def purge(self, before: dt.datetime) -> int:
        dead = [k for k, x in self.t.tokens.items() if x.expires_at < before]
        for k in dead:
            del self.t.tokens[k]
        return len(dead)


class FakeOutbox:
    def __init__(self, t: Tables) -> None:
        self.t = t

    async def record(self, event: AuditEvent) -> None:
        self.t.events.append(event)


class FakeMail:
    def __init__(self, t: Tables) -> None:
        self.t = t

    async def record(self, mail: Mail) -> None:
        self.t.mails.append(mail)


class FakeUnitOfWork:
    """A transaction on a copy of the store's tables, published by ``commit``."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def __aenter__(self) -> Self:
        self._bind(copy.deepcopy(self._store.tables))
        return self

    def _bind(self, t: Tables) -> None:
        self._tables = t
        self.users = FakeUsers(t)
        self.sessions = FakeSessions(t)
        self.refresh_tokens = FakeRefreshTokens(t)
        self.signing_keys = FakeSigningKeys(t)
        self.totp = FakeTotp(t)
        self.recovery_codes = FakeRecoveryCodes(t)
        self.challenges = FakeChallenges(t)
        self.throttle = FakeThrottle(t)
        self.secrets = FakeSecrets(t)
        self.pins = FakePins(t)
        self.tokens = FakeTokens(t)
        self.outbox = FakeOutbox(t)
        self.mail = FakeMail(t)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def commit(self) -> None:
        self._store.tables = self._tables
        self._store.commits += 1
        self._bind(copy.deepcopy(self._tables))


# ---- collaborators -----------------------------------------------------------------------------


@dataclass
class FakeHasher:
    """Salted SHA-256 standing in for argon2: same interface, microseconds instead of 50 ms."""

    version: int = 1
    dummy_calls: int = 0

    async def hash(self, password: str) -> str:
        salt = secrets.token_hex(8)
        digest = hashlib.sha256((salt + password).encode()).hexdigest()
        return f"fake$v{self.version}${salt}${digest}"

    async def verify(self, hashed: str, password: str) -> bool:
        if hashed.count("$") != 3:
            return False
        _, _, salt, digest = hashed.split("$")
        candidate = hashlib.sha256((salt + password).encode()).hexdigest()
        return secrets.compare_digest(candidate, digest)

    async def verify_dummy(self, password: str) -> None:
        self.dummy_calls += 1

    def needs_rehash(self, hashed: str) -> bool:
        return not hashed.startswith(f"fake$v{self.version}$")


class FakeSealer:
    """Reversible and bound to its context (a wrong context fails), not encryption."""

    def __init__(self) -> None:
        self.sealed = 0

    async def encrypt(self, plaintext: bytes, context: str) -> str:
        self.sealed += 1
        return f"{context}|{plaintext.hex()}"

    async def decrypt(self, ciphertext: str, context: str) -> bytes:
        await asyncio.sleep(0)  # a KMS round trip: lets concurrent calls interleave here
        bound, _, body = ciphertext.rpartition("|")
        if bound != context:
            raise ValueError("sealed under another context")
        return bytes.fromhex(body)


@dataclass
class FakeMemberships:
    """The workspaces service's RemoveUserMemberships, as a table of (user, workspace, role)."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)

    async def remove_all(self, user_id: str) -> list[tuple[str, str]]:
        owners = {
            ws: sum(1 for _, w, r in self.rows if w == ws and r == "owner")
            for _, ws, _ in self.rows
        }
        blocking = [
            (f"workspaces/{ws}", ws.title())
            for u, ws, role in self.rows
            if u == user_id and role == "owner" and owners[ws] == 1
        ]
        if not blocking:
            self.rows = [row for row in self.rows if row[0] != user_id]
        return blocking
