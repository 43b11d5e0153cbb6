"""Reading keys: one, a page, and the scope catalogue."""

from __future__ import annotations

import builtins

from servicekit.pagination import fetch_page

from keys_service.domain import ApiKey, Role, ScopeRule
from keys_service.ports import KeyListing
from keys_service.usecases.common import Actor, KeyView
from keys_service.usecases.core import KeysCore

__all__ = ["KeyReads"]


class KeyReads(KeysCore):
    """Get, list and the scopes a key may carry."""

    async def get(self, actor: Actor, ws_id: str, key_id: str) -> KeyView:
        await self._require_live(ws_id)
        async with self._uow() as uow:
            return self._view(await self._visible(uow, actor, ws_id, key_id))

    async def list(
        self, actor: Actor, ws_id: str, page_size: int, page_token: str, show_deleted: bool
    ) -> tuple[list[KeyView], str]:
        await self._require_live(ws_id)
        owner_filter = None if actor.role >= Role.ADMIN else actor.user_id
        listing = KeyListing(ws_id, owner_filter, show_deleted)

        async def read(after: str, limit: int) -> builtins.list[ApiKey]:
            async with self._uow() as uow:
                return await uow.keys.list(listing, after, limit)

        query = f"apiKeys:{ws_id}:{owner_filter or '*'}:{show_deleted}"
        keys, token = await fetch_page(page_size, page_token, query, read, lambda key: key.id)
        return [self._view(k) for k in keys], token

    def list_scopes(self) -> tuple[ScopeRule, ...]:
        return self._policy.rules
