"""servicekit.roles: the one role ranking, held to the contract's numbers."""

from railguard.access.v1 import access_pb2
from servicekit.roles import Role, role_at_least


def test_roles_carry_the_numbers_of_the_contract() -> None:
    assert Role.NONE == access_pb2.ROLE_UNSPECIFIED
    assert Role.USER == access_pb2.ROLE_USER
    assert Role.ADMIN == access_pb2.ROLE_ADMIN
    assert Role.OWNER == access_pb2.ROLE_OWNER


def test_a_role_ranks_at_or_above_what_it_meets_and_no_role_never_does() -> None:
    assert role_at_least(Role.OWNER, Role.ADMIN)
    assert role_at_least(Role.USER, Role.USER)
    assert not role_at_least(Role.USER, Role.ADMIN)
    assert not role_at_least(Role.NONE, Role.NONE)
