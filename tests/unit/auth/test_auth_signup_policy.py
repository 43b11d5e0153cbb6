"""RAILGUARD_SIGNUP_POLICY: open, invite-only, or allowed domains."""

from __future__ import annotations

import dataclasses

import pytest
from auth_service.domain.signup_policy import SignupPolicy
from servicekit.errors import PermissionDenied

from .conftest import PASSWORD, Env


def test_parsing() -> None:
    assert SignupPolicy.parse("") == SignupPolicy.parse("open") == SignupPolicy()
    assert SignupPolicy.parse("invite-only").needs_invitation
    assert SignupPolicy.parse("domains: Example.com, @corp.example.org").domains == {
        "example.com",
        "corp.example.org",
    }
    for bad in ("closed", "domains:", "domains:localhost", "domains:a@b.c"):
        with pytest.raises(ValueError):
            SignupPolicy.parse(bad)


def test_rules() -> None:
    domains = SignupPolicy.parse("domains:example.com")
    domains.check("a@example.com")
    for address in ("a@evil.com", "a@sub.example.com", "a@example.com.evil.com"):
        with pytest.raises(PermissionDenied):
            domains.check(address)
    invite_only = SignupPolicy.parse("invite-only")
    invite_only.check("a@x.org", invited=True)
    with pytest.raises(PermissionDenied):
        invite_only.check("a@x.org", invited=False)


class _Invitations:
    def __init__(self, *pending: str) -> None:
        self.pending = set(pending)

    async def pending_for(self, email: str) -> bool:
        return email in self.pending


async def test_sign_up_follows_the_policy_whether_or_not_the_address_exists(env: Env) -> None:
    await env.auth.accounts.sign_up("taken@evil.com", PASSWORD, "")
    service = env.auth.accounts
    service._config = dataclasses.replace(  # noqa: SLF001 - one operator setting under test
        env.config, signup=SignupPolicy.parse("domains:example.com")
    )
    await service.sign_up("a@example.com", PASSWORD, "")
    answers = set()
    for address in ("new@evil.com", "taken@evil.com"):  # registered or not: one refusal
        with pytest.raises(PermissionDenied) as err:
            await service.sign_up(address, PASSWORD, "")
        answers.add((err.value.reason, str(err.value)))
    assert answers == {("SIGNUP_NOT_ALLOWED", "sign-up is not open to this address")}
    service._config = dataclasses.replace(env.config, signup=SignupPolicy.parse("invite-only"))  # noqa: SLF001
    service._invitations = _Invitations("invited@x.org")  # noqa: SLF001
    await service.sign_up("invited@x.org", PASSWORD, "")
    with pytest.raises(PermissionDenied):
        await service.sign_up("stranger@x.org", PASSWORD, "")
