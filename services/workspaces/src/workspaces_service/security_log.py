"""Use case of a user's own security log (docs/audit.md "A user's security log")."""

from __future__ import annotations

from collections.abc import Callable

from servicekit.errors import InvalidArgument
from servicekit.pagination import fetch_page

from workspaces_service.adapters.invitations import InvitationsUnitOfWork
from workspaces_service.domain.audit_log import AuditEntry


class SecurityLogService:
    def __init__(self, uow: Callable[[], InvitationsUnitOfWork]) -> None:
        self._uow = uow

    async def list_mine(
        self, user_id: str, page_size: int, page_token: str
    ) -> tuple[list[AuditEntry], str]:
        """The caller's account-level events, newest first; the next page holds older ones."""

        async def read(cursor: str, limit: int) -> list[AuditEntry]:
            try:
                before = int(cursor) if cursor else 0
            except ValueError:
                raise InvalidArgument.field(
                    "page_token", "is not a valid page token", reason="INVALID_PAGE_TOKEN"
                ) from None
            async with self._uow() as uow:
                return await uow.security_log.newest_first(user_id, before, limit)

        return await fetch_page(
            page_size, page_token, f"security:{user_id}", read, lambda entry: str(entry.sequence)
        )
