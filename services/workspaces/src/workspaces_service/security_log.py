"""Use case of a user's own security log (docs/audit.md "A user's security log")."""

from __future__ import annotations

from collections.abc import Callable

from servicekit.errors import InvalidArgument
from servicekit.pagination import encode_token, page_request

from workspaces_service.adapters.invitations import InvitationsUnitOfWork
from workspaces_service.domain.audit_log import AuditEntry


class SecurityLogService:
    def __init__(self, uow: Callable[[], InvitationsUnitOfWork]) -> None:
        self._uow = uow

    async def list_mine(
        self, user_id: str, page_size: int, page_token: str
    ) -> tuple[list[AuditEntry], str]:
        """The caller's account-level events, newest first; the next page holds older ones."""
        query = f"security:{user_id}"
        page = page_request(page_size, page_token, query)
        try:
            before = int(page.cursor) if page.cursor else 0
        except ValueError:
            raise InvalidArgument.field(
                "page_token", "is not a valid page token", reason="INVALID_PAGE_TOKEN"
            ) from None
        async with self._uow() as uow:
            entries = await uow.security_log.newest_first(user_id, before, page.size + 1)
        more = len(entries) > page.size
        entries = entries[: page.size]
        token = encode_token(str(entries[-1].sequence), query) if more and entries else ""
        return entries, token
