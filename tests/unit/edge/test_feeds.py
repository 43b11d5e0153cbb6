"""The edge's change-feed client and the caches it keeps: resume, staleness bound, invalidation.

The feed client talks to a real in-process gRPC server (plaintext, a scripted Watch), so
reconnects, resumes and silences are the transport's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from edge_service.api_keys import KeysServiceVerifier
from edge_service.feeds import ANSWERABLE, MAX_ANSWERS_PER_ENTRY, AccessCache, FeedClient
from edge_service.policy import AccessView
from railguard.keys.v1 import keys_service_pb2
from railguard.watch.v1 import watch_pb2, watch_pb2_grpc


def _change(version: int, topic: str, key: str) -> watch_pb2.WatchEvent:
    return watch_pb2.WatchEvent(change=watch_pb2.Change(version=version, topic=topic, key=key))


def _bookmark(version: int) -> watch_pb2.WatchEvent:
    return watch_pb2.WatchEvent(bookmark=watch_pb2.Bookmark(version=version))


_RESET = watch_pb2.WatchEvent(reset=watch_pb2.Reset())


class _Script(watch_pb2_grpc.ChangeFeedServiceServicer):
    """Each Watch call plays the next script; a script ending in None holds the stream open
    silently, else the stream ends (the client must reconnect)."""

    def __init__(self, scripts: list[list[watch_pb2.WatchEvent | None]]) -> None:
        self.scripts = scripts
        self.requests: list[int] = []

    async def Watch(  # noqa: N802 - gRPC name
        self, request: watch_pb2.WatchRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[watch_pb2.WatchEvent]:
        self.requests.append(request.from_version)
        script = self.scripts.pop(0) if self.scripts else [None]
        for item in script:
            if item is None:
                await asyncio.sleep(3600)
            else:
                yield item


async def _serve(servicer: _Script) -> tuple[grpc.aio.Server, grpc.aio.Channel]:
    server = grpc.aio.server()
    watch_pb2_grpc.add_ChangeFeedServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, grpc.aio.insecure_channel(f"127.0.0.1:{port}")


async def _eventually(condition: object, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_a_broken_stream_resumes_from_the_last_bookmark() -> None:
    script = _Script(
        [
            [_RESET, _change(3, "membership", "w/u"), _bookmark(3), _change(4, "workspace", "w")],
            [_change(5, "membership", "w/v"), _bookmark(5), None],
        ]
    )
    server, channel = await _serve(script)
    feed = FeedClient("workspaces", channel)
    heard: list[tuple[str, str]] = []
    resets: list[int] = []
    feed.on_change.append(lambda topic, key: heard.append((topic, key)))
    feed.on_reset.append(lambda: resets.append(1))
    feed.start()
    try:
        await _eventually(lambda: feed.version == 5 and feed.live)
        # the first stream ended after change 4, before its bookmark: resume from 3, not 4
        assert script.requests == [0, 3]
        assert heard == [("membership", "w/u"), ("workspace", "w"), ("membership", "w/v")]
        assert resets == [1]
        assert feed.connects == 2
    finally:
        await feed.close()
        await channel.close()
        await server.stop(0)


async def test_a_stream_that_breaks_is_not_live_until_it_is_in_sync_again() -> None:
    script = _Script([[_RESET, _bookmark(1)], [None]])  # the second stream never syncs
    server, channel = await _serve(script)
    feed = FeedClient("keys", channel)
    feed.start()
    try:
        await _eventually(lambda: len(script.requests) == 2)
        await asyncio.sleep(0.1)
        assert not feed.live
    finally:
        await feed.close()
        await channel.close()
        await server.stop(0)


async def test_silence_for_more_than_a_second_ends_live_and_the_cache_asks_again() -> None:
    script = _Script([[_RESET, _bookmark(7), None]])  # in sync, then not one heartbeat more
    server, channel = await _serve(script)
    feed = FeedClient("workspaces", channel)
    asker = _Asker()
    cache = AccessCache(asker, lambda: feed.live)
    feed.on_change.append(cache.on_change)
    feed.on_reset.append(cache.clear)
    feed.start()
    try:
        await _eventually(lambda: feed.live)
        await cache.resolve("u", "w")
        await cache.resolve("u", "w")
        assert asker.calls == 1  # live: the second answer came from the cache
        await asyncio.sleep(1.2)
        assert not feed.live
        asker.role = 1  # a change the silent feed would not tell
        view = await cache.resolve("u", "w")
        assert asker.calls == 2 and view.role == 1  # not live: asked, and correct
    finally:
        await feed.close()
        await channel.close()
        await server.stop(0)


async def test_an_unreachable_producer_is_retried_with_a_bounded_backoff() -> None:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")
    feed = FeedClient("auth", channel)
    feed.start()
    try:
        await asyncio.sleep(1.6)
        assert not feed.live
        assert feed.connects >= 3  # 0.1, 0.2, 0.4, 0.8…: never a long silence
    finally:
        await feed.close()
        await channel.close()


async def test_an_unknown_event_kind_drops_everything(channel: grpc.aio.Channel) -> None:
    feed = FeedClient("workspaces", channel)
    resets: list[int] = []
    feed.on_reset.append(lambda: resets.append(1))
    feed.handle(_bookmark(4))
    assert feed.synced
    feed.handle(watch_pb2.WatchEvent())  # nothing set: a kind from a newer producer
    assert resets == [1] and not feed.synced and feed.version == 0


class _Asker:
    def __init__(self) -> None:
        self.calls = 0
        self.role = 3
        self.during: object = None  # called while "asking", to inject a concurrent change

    async def resolve(self, user_id: str, workspace_id: str) -> AccessView:
        self.calls += 1
        if callable(self.during):
            self.during()
        await asyncio.sleep(0)
        return AccessView(True, True, self.role, False, False, 1)


async def test_access_is_cached_while_live_and_dropped_by_its_changes() -> None:
    asker = _Asker()
    cache = AccessCache(asker, lambda: True)
    await cache.resolve("u1", "w1")
    await cache.resolve("u2", "w1")
    await cache.resolve("u1", "w2")
    assert asker.calls == 3
    await cache.resolve("u1", "w1")
    assert asker.calls == 3
    cache.on_change("membership", "w1/u1")
    assert (await cache.resolve("u1", "w1")).role == 3 and asker.calls == 4
    await cache.resolve("u2", "w1")
    assert asker.calls == 4, "another member's entry stays"
    cache.on_change("workspace", "w1")  # settings, deletion, restore, purge: every member
    await cache.resolve("u2", "w1")
    await cache.resolve("u1", "w1")
    await cache.resolve("u1", "w2")
    assert asker.calls == 6
    cache.on_change("something-new", "x")  # an unknown topic: fail safe
    assert len(cache) == 0


async def test_not_live_asks_every_time_and_stores_nothing() -> None:
    asker = _Asker()
    live = [False]
    cache = AccessCache(asker, lambda: live[0])
    for _ in range(3):
        await cache.resolve("u", "w")
    assert asker.calls == 3 and len(cache) == 0
    live[0] = True
    await cache.resolve("u", "w")
    live[0] = False
    await cache.resolve("u", "w")
    assert asker.calls == 5, "an entry from a live period is not used once the feed is not"


async def test_an_answer_that_overlapped_an_invalidation_is_not_stored() -> None:
    asker = _Asker()
    cache = AccessCache(asker, lambda: True)
    asker.during = lambda: cache.on_change("membership", "w/u")  # the change lands mid-ask
    await cache.resolve("u", "w")
    asker.during = None
    await cache.resolve("u", "w")
    assert asker.calls == 2, "the answer asked before the change was not kept after it"
    await cache.resolve("u", "w")
    assert asker.calls == 2


GET_WORKSPACE = "/railguard.workspaces.v1.WorkspacesService/GetWorkspace"


async def _kept(cache: AccessCache, user: str, ws: str, answer: str, request: bytes = b"r") -> None:
    """Resolve (the edge authorizes first) and keep ``answer`` as asked in this generation."""
    await cache.resolve(user, ws)
    cache.keep_answer(user, ws, GET_WORKSPACE, request, answer, cache.generation)


async def test_an_answer_is_kept_with_its_access_entry_and_dropped_by_its_changes() -> None:
    assert GET_WORKSPACE in ANSWERABLE
    cache = AccessCache(_Asker(), lambda: True)
    await _kept(cache, "u1", "w1", '{"displayName": "one"}')
    await _kept(cache, "u2", "w1", '{"displayName": "one", "callerRole": "x"}')
    await _kept(cache, "u1", "w2", '{"displayName": "two"}')
    assert cache.answer("u1", "w1", GET_WORKSPACE, b"r") == '{"displayName": "one"}'
    assert cache.answer("u1", "w1", GET_WORKSPACE, b"other request") is None
    assert cache.answer("u2", "w2", GET_WORKSPACE, b"r") is None, "never another caller's"
    cache.on_change("membership", "w1/u1")  # the caller's role or membership
    assert cache.answer("u1", "w1", GET_WORKSPACE, b"r") is None
    assert cache.answer("u2", "w1", GET_WORKSPACE, b"r") is not None
    cache.on_change("workspace", "w1")  # a rename, settings, deletion: every member's answer
    assert cache.answer("u2", "w1", GET_WORKSPACE, b"r") is None
    assert cache.answer("u1", "w2", GET_WORKSPACE, b"r") is not None
    cache.forget("w2")  # a write this edge forwarded: read your writes
    assert cache.answer("u1", "w2", GET_WORKSPACE, b"r") is None
    assert cache.answer_hits == 3


async def test_only_answerable_methods_are_kept() -> None:
    cache = AccessCache(_Asker(), lambda: True)
    await cache.resolve("u", "w")
    method = "/railguard.workspaces.v1.WorkspacesService/ListMembers"
    cache.keep_answer("u", "w", method, b"r", "{}", cache.generation)
    assert cache.answer("u", "w", method, b"r") is None


async def test_an_answer_asked_across_an_invalidation_is_not_kept() -> None:
    cache = AccessCache(_Asker(), lambda: True)
    await cache.resolve("u", "w")
    generation = cache.generation  # read before the call is forwarded
    cache.on_change("workspace", "other")  # any invalidation while it is in flight
    await cache.resolve("u", "w")
    cache.keep_answer("u", "w", GET_WORKSPACE, b"r", "{}", generation)
    assert cache.answer("u", "w", GET_WORKSPACE, b"r") is None


async def test_answers_need_a_live_feed_and_a_held_access_entry() -> None:
    live = [True]
    cache = AccessCache(_Asker(), lambda: live[0], max_entries=1)
    await _kept(cache, "u", "w", "{}")
    live[0] = False
    assert cache.answer("u", "w", GET_WORKSPACE, b"r") is None, "not while the feed is not live"
    cache.keep_answer("u", "w", GET_WORKSPACE, b"s", "{}", cache.generation)
    live[0] = True
    assert cache.answer("u", "w", GET_WORKSPACE, b"s") is None, "nothing kept while not live"
    await cache.resolve("v", "w")  # evicts (u, w) and its answers with it
    assert cache.answer("u", "w", GET_WORKSPACE, b"r") is None
    cache.keep_answer("u", "w", GET_WORKSPACE, b"r", "{}", cache.generation)
    assert cache.answer("u", "w", GET_WORKSPACE, b"r") is None, "no entry, no answer"


async def test_the_answers_of_one_entry_are_bounded() -> None:
    cache = AccessCache(_Asker(), lambda: True)
    for i in range(MAX_ANSWERS_PER_ENTRY + 1):
        await _kept(cache, "u", "w", str(i), request=bytes([i]))
    kept = [
        cache.answer("u", "w", GET_WORKSPACE, bytes([i])) for i in range(MAX_ANSWERS_PER_ENTRY + 1)
    ]
    assert sum(k is not None for k in kept) <= MAX_ANSWERS_PER_ENTRY
    assert kept[-1] == str(MAX_ANSWERS_PER_ENTRY)


async def test_the_access_cache_is_a_bounded_lru() -> None:
    asker = _Asker()
    cache = AccessCache(asker, lambda: True, max_entries=2)
    await cache.resolve("a", "w")
    await cache.resolve("b", "w")
    await cache.resolve("a", "w")  # a is now the most recent
    await cache.resolve("c", "w")  # evicts b
    assert len(cache) == 2 and asker.calls == 3
    await cache.resolve("a", "w")
    assert asker.calls == 3
    await cache.resolve("b", "w")
    assert asker.calls == 4
    cache.on_change("workspace", "w")
    assert len(cache) == 0


class _KeysStub:
    def __init__(self, verifier: KeysServiceVerifier | None = None) -> None:
        self.calls = 0
        self.verifier = verifier
        self.change_during = False

    async def VerifyApiKey(  # noqa: N802 - gRPC name
        self, request: keys_service_pb2.VerifyApiKeyRequest, **_: object
    ) -> keys_service_pb2.VerifyApiKeyResponse:
        self.calls += 1
        if self.change_during and self.verifier is not None:
            self.verifier.on_change("api_key", "k1")
        return keys_service_pb2.VerifyApiKeyResponse(
            key_id="k1", workspace_id="w1", created_by="u1", scopes=["keys:read"], aal="aal2"
        )


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    ch = grpc.aio.insecure_channel("127.0.0.1:9")  # never dialled: the stub is replaced
    yield ch
    await ch.close()


async def test_a_live_keys_feed_keeps_a_verified_key_until_its_change(
    channel: grpc.aio.Channel,
) -> None:
    live = [True]
    verifier = KeysServiceVerifier(channel, live=lambda: live[0], live_ttl=60.0)
    stub = _KeysStub()
    verifier._stub = stub  # type: ignore[assignment]
    assert verifier.effective_ttl == 60.0
    for _ in range(3):
        await verifier.verify("rg_live_x", "127.0.0.1", "", "keys:read")
    assert stub.calls == 1
    await asyncio.sleep(0.6)  # past the short bound: the live feed still vouches
    await verifier.verify("rg_live_x", "127.0.0.1", "", "keys:read")
    assert stub.calls == 1
    verifier.on_change("api_key", "k1")  # revoked, rotated, updated…
    await verifier.verify("rg_live_x", "127.0.0.1", "", "keys:read")
    assert stub.calls == 2
    verifier.on_change("workspace", "w1")  # its workspace was deleted, restored or purged
    await verifier.verify("rg_live_x", "127.0.0.1", "", "keys:read")
    assert stub.calls == 3
    verifier.clear()  # the feed's Reset
    await verifier.verify("rg_live_x", "127.0.0.1", "", "keys:read")
    assert stub.calls == 4


async def test_a_lost_keys_feed_brings_back_the_half_second_bound(
    channel: grpc.aio.Channel,
) -> None:
    live = [True]
    verifier = KeysServiceVerifier(channel, live=lambda: live[0], live_ttl=60.0)
    stub = _KeysStub()
    verifier._stub = stub  # type: ignore[assignment]
    await verifier.verify("rg_live_x", "127.0.0.1", "", "keys:read")
    live[0] = False
    assert verifier.effective_ttl == 0.5
    await verifier.verify("rg_live_x", "127.0.0.1", "", "keys:read")
    assert stub.calls == 1, "within 0.5 s an entry serves, as without the feed"
    await asyncio.sleep(0.6)
    await verifier.verify("rg_live_x", "127.0.0.1", "", "keys:read")
    assert stub.calls == 2, "an entry stored for 60 s is not trusted past 0.5 s without the feed"


async def test_a_key_verification_that_overlapped_its_change_is_not_stored(
    channel: grpc.aio.Channel,
) -> None:
    verifier = KeysServiceVerifier(channel, live=lambda: True)
    stub = _KeysStub(verifier)
    verifier._stub = stub  # type: ignore[assignment]
    stub.change_during = True
    await verifier.verify("rg_live_x", "127.0.0.1", "", "keys:read")
    stub.change_during = False
    await verifier.verify("rg_live_x", "127.0.0.1", "", "keys:read")
    assert stub.calls == 2
    await verifier.verify("rg_live_x", "127.0.0.1", "", "keys:read")
    assert stub.calls == 2


async def test_a_change_this_edge_forwarded_is_not_answered_from_its_cache() -> None:
    asker = _Asker()
    cache = AccessCache(asker, lambda: True)
    await cache.resolve("u1", "w1")
    await cache.resolve("u1", "w2")
    cache.forget("w1")  # e.g. this edge forwarded UpdateMember in w1
    await cache.resolve("u1", "w1")
    await cache.resolve("u1", "w2")
    assert asker.calls == 3, "w1 asked again at once, w2 still cached"
    cache.forget(None)  # a change of no one workspace (CreateWorkspace, AcceptInvitation)
    assert len(cache) == 0


async def test_kept_names_only_answerable_reads_of_a_user_in_a_workspace() -> None:
    from railguard.workspaces.v1 import workspaces_service_pb2 as ws_pb

    cache = AccessCache(_Asker(), lambda: True)
    request = ws_pb.GetWorkspaceRequest(name="workspaces/w")
    other = "/railguard.workspaces.v1.WorkspacesService/ListMembers"
    assert cache.kept("u", "w", other, request) is None
    assert cache.kept("", "w", GET_WORKSPACE, request) is None, "no user: nothing to key it on"
    assert cache.kept("u", "", GET_WORKSPACE, request) is None
    await cache.resolve("u", "w")
    slot = cache.kept("u", "w", GET_WORKSPACE, request)
    assert slot is not None and slot.lookup() is None
    slot.keep('{"name": "workspaces/w"}')
    again = cache.kept("u", "w", GET_WORKSPACE, ws_pb.GetWorkspaceRequest(name="workspaces/w"))
    assert again is not None and again.lookup() == '{"name": "workspaces/w"}'
    stale = cache.kept("u", "w", GET_WORKSPACE, request)
    assert stale is not None
    cache.on_change("workspace", "w")
    await cache.resolve("u", "w")
    stale.keep("{}")  # its counter was read before the change
    assert cache.kept("u", "w", GET_WORKSPACE, request).lookup() is None  # type: ignore[union-attr]
