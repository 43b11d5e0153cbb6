"""Who may sign up (``RAILGUARD_SIGNUP_POLICY``): ``open`` (the default), ``invite-only`` (only
an address with a pending workspace invitation), or ``domains:example.com,corp.example.org``
(only addresses at those domains, sub-domains not included). A refusal never depends on
whether the address is registered."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.errors import PermissionDenied

OPEN = "open"
INVITE_ONLY = "invite-only"
_DOMAINS = "domains:"


@dataclass(frozen=True, slots=True)
class SignupPolicy:
    mode: str = OPEN
    domains: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, raw: str) -> SignupPolicy:
        value = raw.strip().lower()
        if value in ("", OPEN):
            return cls()
        if value == INVITE_ONLY:
            return cls(INVITE_ONLY)
        if value.startswith(_DOMAINS):
            domains = frozenset(d.strip().lstrip("@") for d in value[len(_DOMAINS) :].split(","))
            domains = frozenset(d for d in domains if d)
            if domains and all("." in d and "@" not in d for d in domains):
                return cls("domains", domains)
        raise ValueError(
            "RAILGUARD_SIGNUP_POLICY must be open, invite-only or domains:a.example,b.example"
        )

    @property
    def needs_invitation(self) -> bool:
        return self.mode == INVITE_ONLY

    def check(self, address: str, invited: bool = False) -> None:
        """Refuse a sign-up of ``address`` (already normalised) that the policy does not allow."""
        if self.mode == OPEN:
            return
        if self.mode == INVITE_ONLY and invited:
            return
        if self.mode == "domains" and address.rpartition("@")[2] in self.domains:
            return
        raise PermissionDenied("sign-up is not open to this address", reason="SIGNUP_NOT_ALLOWED")
