"""Signing keys of access tokens and their rotation: ``next`` → ``current`` → ``retired``.

* ``next`` is published in the JWKS but signs nothing yet, so verifiers' caches hold it before
  the first token it signs reaches them;
* ``current`` signs (exactly one; should a race leave two, the newest wins and the other retires);
* ``retired`` signs nothing and stays published until every token it signed has expired
  (``verify_until`` = retirement + access-token TTL + JWKS cache TTL), then it is dropped.

:func:`plan_rotation` is the whole policy as a pure function of the key set and the time.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import hashlib
import json
from dataclasses import dataclass, field


class KeyState(enum.StrEnum):
    NEXT = "next"
    CURRENT = "current"
    RETIRED = "retired"


@dataclass(slots=True)
class SigningKey:
    kid: str
    state: KeyState
    public_key: bytes
    sealed_private_key: str = field(repr=False)
    created_at: dt.datetime
    activated_at: dt.datetime | None = None
    retired_at: dt.datetime | None = None
    verify_until: dt.datetime | None = None

    def public_jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url(self.public_key),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }

    def published(self, now: dt.datetime) -> bool:
        return self.state is not KeyState.RETIRED or (
            self.verify_until is not None and now < self.verify_until
        )


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    interval: dt.timedelta = dt.timedelta(days=30)
    # How long verifiers may cache the JWKS: a next key is published at least this long before
    # it signs, and a retired key stays this long past the last token it signed.
    jwks_cache: dt.timedelta = dt.timedelta(minutes=10)
    access_token_ttl: dt.timedelta = dt.timedelta(minutes=10)

    @property
    def verify_overlap(self) -> dt.timedelta:
        return self.access_token_ttl + self.jwks_cache


@dataclass(frozen=True, slots=True)
class RotationPlan:
    """What to change: keys to promote, retire and drop, and whether to create a key."""

    promote: str | None = None
    retire: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    create_current: bool = False
    create_next: bool = False

    @property
    def empty(self) -> bool:
        return self == RotationPlan()


def plan_rotation(keys: list[SigningKey], now: dt.datetime, policy: RotationPolicy) -> RotationPlan:
    drop = tuple(
        k.kid
        for k in keys
        if k.state is KeyState.RETIRED and (k.verify_until is None or now >= k.verify_until)
    )
    currents = sorted(
        (k for k in keys if k.state is KeyState.CURRENT),
        key=lambda k: (k.activated_at or k.created_at, k.kid),
    )
    nexts = sorted(
        (k for k in keys if k.state is KeyState.NEXT), key=lambda k: (k.created_at, k.kid)
    )
    retire = [k.kid for k in currents[:-1]]
    current = currents[-1] if currents else None
    promote: str | None = None
    create_current = False
    if current is None:
        # Nothing signs: take the oldest next key at once (on first start no verifier has a
        # cache to honour), or create a current key.
        if nexts:
            promote = nexts[0].kid
        else:
            create_current = True
    elif now >= (current.activated_at or current.created_at) + policy.interval:
        ready = [k for k in nexts if now >= k.created_at + policy.jwks_cache]
        if ready:
            promote = ready[0].kid
            retire.append(current.kid)
    remaining_next = [k for k in nexts if k.kid != promote]
    return RotationPlan(
        promote=promote,
        retire=tuple(retire),
        drop=drop,
        create_current=create_current,
        create_next=not remaining_next,
    )


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def thumbprint_kid(public_key: bytes) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256) of an Ed25519 public key: a stable, unique kid."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(public_key)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(canonical).digest())
