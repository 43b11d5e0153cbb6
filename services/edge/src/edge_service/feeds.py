"""The edge's side of the change feeds: watch clients, and the access cache they keep fresh.

Each producer (workspaces, keys, auth) serves ``ChangeFeedService/Watch`` (servicekit.changefeed).
:class:`FeedClient` holds one stream per producer channel, a
:class:`~servicekit.follower.FeedFollower` over gRPC: it resumes from the last Bookmark's version,
reconnects with a backoff capped at 1 s, and on ``Reset`` tells its caches to drop everything. It
is :attr:`~FeedClient.live` while it is in sync (a Bookmark after the replay) and heard from the
producer within ``stale_after`` (1 s; heartbeats come every 0.25 s). A cache uses what it holds
only while its feed is live; otherwise the edge asks every time, as it did before.

:class:`AccessCache` is the edge's ``WorkspaceAccess`` (``authorize``): (user, workspace) →
AccessView, filled on demand, bounded (LRU), dropped on a ``membership`` change of the pair or a
``workspace`` change of the workspace. An answer is stored only if no invalidation arrived while
it was being asked (an invalidation counter), so an answer from before a change is never kept
after that change's invalidation.

The same entry may also hold the rendered answers of the reads that depend on nothing else than
what invalidates it (:data:`ANSWERABLE`: ``GetWorkspace``, the workspace row and the caller's
membership): :meth:`AccessCache.answer` and :meth:`AccessCache.keep_answer`, under the same rules
(live feed, invalidation counter, LRU). The edge then answers them without the hop, with the
bytes the backend's answer rendered to.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf.message import Message as ProtoMessage
from railguard.watch.v1 import watch_pb2, watch_pb2_grpc
from servicekit.follower import BACKOFF_MAX, STALE_AFTER, FeedFollower, KeptEntries, Listener

from edge_service.policy import AccessView, WorkspaceAccess

__all__ = ["ANSWERABLE", "AccessCache", "FeedClient", "KeptAnswer", "Listener"]


ANSWERABLE = frozenset({"/railguard.workspaces.v1.WorkspacesService/GetWorkspace"})
"""The RPCs whose answer is a function of (workspace row, caller's membership) alone: what a
``workspace`` or ``membership`` change invalidates. Nothing else may be answered from the cache."""
MAX_ANSWERS_PER_ENTRY = 4  # distinct requests of one caller on one workspace (GetWorkspace: 1)


class _Entry:
    """One (user, workspace): the access view and the rendered answers kept with it."""

    __slots__ = ("answers", "view")

    def __init__(self, view: AccessView) -> None:
        self.view = view
        self.answers: dict[tuple[str, bytes], str] = {}


class FeedClient(FeedFollower):
    """One producer's Watch stream over gRPC (see the module docstring)."""

    def __init__(
        self,
        name: str,
        channel: grpc.aio.Channel,
        *,
        stale_after: float = STALE_AFTER,
        backoff_max: float = BACKOFF_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name, stale_after=stale_after, backoff_max=backoff_max, clock=clock)
        self._stub = watch_pb2_grpc.ChangeFeedServiceStub(channel)

    def handle(self, event: watch_pb2.WatchEvent) -> None:
        """Apply one message of the stream."""
        kind = event.WhichOneof("event") or ""
        if kind == "change":
            self.apply(kind, event.change.version, event.change.topic, event.change.key)
        elif kind == "bookmark":
            self.apply(kind, event.bookmark.version)
        else:  # reset, or a kind this edge does not know: drop everything (fail safe)
            self.apply("reset")

    async def _follow(self) -> None:
        call = self._stub.Watch(watch_pb2.WatchRequest(from_version=self.version))
        try:
            async for event in call:
                self.handle(event)
        except asyncio.CancelledError:
            call.cancel()
            raise


class AccessCache:
    """``WorkspaceAccess`` from pushed state while ``live()``; asks every time otherwise."""

    def __init__(
        self,
        ask: WorkspaceAccess,
        live: Callable[[], bool],
        *,
        max_entries: int = 100_000,
    ) -> None:
        self._ask = ask
        self._kept: KeptEntries[tuple[str, str], _Entry] = KeptEntries(
            live, lambda pair, _entry: pair[1], max_entries=max_entries
        )
        self.answer_hits = 0

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def generation(self) -> int:
        """Bumped by every invalidation."""
        return self._kept.generation

    @property
    def hits(self) -> int:
        return self._kept.hits

    @property
    def misses(self) -> int:
        return self._kept.misses

    async def resolve(self, user_id: str, workspace_id: str) -> AccessView:
        async def ask() -> _Entry:
            return _Entry(await self._ask.resolve(user_id, workspace_id))

        entry = await self._kept.through((user_id, workspace_id), ask)
        return entry.view

    def kept(
        self, user_id: str, workspace_id: str, method: str, request: ProtoMessage
    ) -> KeptAnswer | None:
        """Where the answer of this read is kept, if ``method`` is answerable (only then is the
        request serialized); the invalidation counter is read now, before the call is made."""
        if method not in ANSWERABLE or not user_id or not workspace_id:
            return None
        exact = request.SerializeToString(deterministic=True)
        return KeptAnswer(self, user_id, workspace_id, method, exact, self.generation)

    def answer(self, user_id: str, workspace_id: str, method: str, request: bytes) -> str | None:
        """The kept answer of ``method`` with the serialized ``request``, while live; else None."""
        if method not in ANSWERABLE or not self._kept.live():
            return None
        entry = self._kept.peek((user_id, workspace_id))
        if entry is None:
            return None
        found = entry.answers.get((method, request))
        if found is not None:
            self.answer_hits += 1
        return found

    def keep_answer(  # noqa: PLR0913 - the key of an answer and the generation it was asked in
        self,
        user_id: str,
        workspace_id: str,
        method: str,
        request: bytes,
        answer: str,
        generation: int,
    ) -> None:
        """Keep an answer asked for at ``generation``, if nothing was invalidated since, the feed
        is live and the caller's access view is held (the answer goes when the view goes)."""
        if method not in ANSWERABLE or generation != self.generation or not self._kept.live():
            return
        entry = self._kept.peek((user_id, workspace_id))
        if entry is None:
            return
        if len(entry.answers) >= MAX_ANSWERS_PER_ENTRY:
            entry.answers.clear()
        entry.answers[(method, request)] = answer

    def on_change(self, topic: str, key: str) -> None:
        """A change heard from the workspaces feed."""
        if topic == "membership":
            ws, _, user = key.partition("/")
            self._kept.drop((user, ws))
        elif topic == "workspace":
            self._kept.drop_group(key)
        else:
            self.clear()  # a topic this edge does not know: fail safe

    def forget(self, workspace_id: str | None) -> None:
        """This edge forwarded a change of ``workspace_id`` (None: of no one workspace, e.g. a
        created workspace or an accepted invitation): drop what it could have changed."""
        if workspace_id is None:
            self.clear()
        else:
            self.on_change("workspace", workspace_id)

    def clear(self) -> None:
        self._kept.clear()


@dataclass(frozen=True, slots=True)
class KeptAnswer:
    """One answerable read (:data:`ANSWERABLE`) in the access cache: the caller's (user,
    workspace) entry, the method, the exact request and the invalidation counter read before the
    call, so an answer asked before a change is never kept after that change's invalidation."""

    cache: AccessCache
    user_id: str
    workspace_id: str
    method: str
    request: bytes
    generation: int

    def lookup(self) -> str | None:
        return self.cache.answer(self.user_id, self.workspace_id, self.method, self.request)

    def keep(self, rendered: str) -> None:
        self.cache.keep_answer(
            self.user_id, self.workspace_id, self.method, self.request, rendered, self.generation
        )
