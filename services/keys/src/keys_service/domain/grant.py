"""The one rule behind every secret the keys service hands out: never more than the caller has.

    A caller never obtains a secret, or a key, whose effective rights exceed its own.

Rights are compared facet by facet (:class:`Rights`); a grant is within a holder when every facet
is (each refusal is PERMISSION_DENIED with its own stable reason):

=============  ======================================================  ==========================
facet          the grant is within the holder when                     reason
=============  ======================================================  ==========================
role           grant role ≤ holder role (a key acts with its           ``ROLE_EXCEEDS_CALLER``
               creator's *current* role)
scopes         every grant scope is covered by the holder's scopes     ``SCOPE_EXCEEDS_CREATOR``
allowed_cidrs  holder unrestricted, or every grant network lies        ``CIDRS_EXCEED_CALLER``
               inside a holder network (an empty grant list means
               "any address", so it is refused under a restricted
               holder)
origins        the set of Origin values the grant accepts is a subset  ``ORIGINS_EXCEED_CALLER``
               of the holder's (empty = "no Origin header only", so
               under a servers-only holder the grant stays empty)
expiry         holder never expires, or the grant expires no later     ``EXPIRY_EXCEEDS_CALLER``
               (unset is later than anything)
environment    holder of any environment (a user), or the same one     ``ENVIRONMENT_EXCEEDS_CALLER``
assurance      grant aal ≤ holder aal                                  ``AAL_EXCEEDS_CALLER``
=============  ======================================================  ==========================

A user session holds :meth:`Rights.of_user`: its role's rights, no network, origin, expiry or
environment restriction, and its session's assurance. A caller that is an API key holds
:meth:`Rights.of_key`: the key's own restrictions with its creator's current role. The keys service
checks every create, rotate and (for the fields being changed) update with :func:`ensure_grant`.
Pure: no I/O, time comes in with the values.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from servicekit.errors import PermissionDenied

from .key_format import KeyEnvironment
from .network import IpAllowlist, IpNetwork
from .origin import OriginAllowlist
from .rights import Role
from .scopes import ScopeSet, ensure_within

__all__ = ["AAL_LEVELS", "Facet", "Rights", "aal_level", "ensure_grant"]

AAL_LEVELS: Final = {"aal1": 1, "aal2": 2}
"""Authenticator assurance levels, ordered; anything unknown counts as the lowest."""


class Facet(StrEnum):
    """One dimension of rights; also the names :func:`ensure_grant` can be limited to."""

    ROLE = "role"
    SCOPES = "scopes"
    ALLOWED_CIDRS = "allowed_cidrs"
    ALLOWED_ORIGINS = "allowed_origins"
    EXPIRY = "expire_time"
    ENVIRONMENT = "environment"
    ASSURANCE = "aal"


ALL_FACETS: Final = frozenset(Facet)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rights:
    """What a principal, or a key once issued, can do.

    ``environment`` None means "either environment" (a user); ``allowed_origins`` None means
    "any Origin, or none" (a user session is not bound to origins).
    """

    role: Role
    scopes: ScopeSet
    allowed_cidrs: IpAllowlist
    allowed_origins: OriginAllowlist | None
    expires_at: datetime | None
    environment: KeyEnvironment | None
    aal: str

    @classmethod
    def of_user(cls, role: Role, role_rights: ScopeSet, aal: str) -> Rights:
        """A signed-in user: everything its role allows, bound to nothing else."""
        return cls(
            role=role,
            scopes=role_rights,
            allowed_cidrs=IpAllowlist(),
            allowed_origins=None,
            expires_at=None,
            environment=None,
            aal=aal,
        )

    @classmethod
    def of_key(
        cls,
        *,
        role: Role,
        scopes: ScopeSet,
        allowed_cidrs: IpAllowlist,
        allowed_origins: OriginAllowlist,
        expires_at: datetime | None,
        environment: KeyEnvironment,
        aal: str,
    ) -> Rights:
        """An API key (as a caller, or as what a secret would grant) acting as ``role``."""
        return cls(
            role=role,
            scopes=scopes,
            allowed_cidrs=allowed_cidrs,
            allowed_origins=allowed_origins,
            expires_at=expires_at,
            environment=environment,
            aal=aal,
        )


def _deny(reason: str, message: str, facet: Facet) -> PermissionDenied:
    return PermissionDenied(message, reason=reason, metadata={"field": facet.value})


def _inside(net: IpNetwork, holder: IpAllowlist) -> bool:
    return any(
        net.version == outer.version and net.subnet_of(outer)  # type: ignore[arg-type]
        for outer in holder.networks
    )


def _cidrs_within(grant: IpAllowlist, holder: IpAllowlist) -> bool:
    if holder.unrestricted:
        return True
    if grant.unrestricted:
        return False  # "any address" is wider than any list
    return all(_inside(net, holder) for net in grant.networks)


def _origins_within(grant: OriginAllowlist | None, holder: OriginAllowlist | None) -> bool:
    if holder is None:
        return True
    if grant is None:
        return False
    # empty accepts exactly "no Origin header"; a list accepts exactly its origins
    if not holder.origins:
        return not grant.origins
    return bool(grant.origins) and grant.origins <= holder.origins


def _expiry_within(grant: datetime | None, holder: datetime | None) -> bool:
    if holder is None:
        return True
    return grant is not None and grant <= holder


def aal_level(aal: str) -> int:
    """The order of an assurance level; unknown values are the lowest."""
    return AAL_LEVELS.get(aal, 1)


def _environment_within(grant: Rights, holder: Rights) -> bool:
    return holder.environment is None or grant.environment is holder.environment


# The facets after role and scopes, in the order they are checked: (facet, within, reason, message).
_LIMITS: Final[tuple[tuple[Facet, Callable[[Rights, Rights], bool], str, str], ...]] = (
    (
        Facet.ALLOWED_CIDRS,
        lambda g, h: _cidrs_within(g.allowed_cidrs, h.allowed_cidrs),
        "CIDRS_EXCEED_CALLER",
        "allowed_cidrs must lie within your own key's allowed_cidrs",
    ),
    (
        Facet.ALLOWED_ORIGINS,
        lambda g, h: _origins_within(g.allowed_origins, h.allowed_origins),
        "ORIGINS_EXCEED_CALLER",
        "allowed_origins must lie within your own key's allowed_origins",
    ),
    (
        Facet.EXPIRY,
        lambda g, h: _expiry_within(g.expires_at, h.expires_at),
        "EXPIRY_EXCEEDS_CALLER",
        "expire_time must be set and no later than your own key's",
    ),
    (
        Facet.ENVIRONMENT,
        _environment_within,
        "ENVIRONMENT_EXCEEDS_CALLER",
        "a key can only grant keys of its own environment",
    ),
    (
        Facet.ASSURANCE,
        lambda g, h: aal_level(g.aal) <= aal_level(h.aal),
        "AAL_EXCEEDS_CALLER",
        "the key would carry a higher assurance than your own",
    ),
)


def ensure_grant(grant: Rights, holder: Rights, *, facets: Collection[Facet] = ALL_FACETS) -> None:
    """Refuse ``grant`` (a key or a secret about to be handed out) wider than ``holder``.

    ``facets`` limits the check to what a request changes (an update that renames a key does not
    have to re-justify its scopes); creation and rotation check every facet.
    """
    if Facet.ROLE in facets and grant.role > holder.role:
        raise _deny(
            "ROLE_EXCEEDS_CALLER", "the key would act with a role above your own", Facet.ROLE
        )
    if Facet.SCOPES in facets:
        ensure_within(grant.scopes, holder.scopes)
    for facet, within, reason, message in _LIMITS:
        if facet in facets and not within(grant, holder):
            raise _deny(reason, message, facet)
