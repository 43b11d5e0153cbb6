"""The workspaces change feed, end to end over mutual TLS, as the edge uses it.

A real workspaces server (its use cases, its database, the Watch servicer, as the composition root
wires them) on a fixed port; the edge's FeedClient and AccessCache on the other side. Covered:
only the edge may watch; a change reaches the edge's cache within the bound; the stream resumes
after a backend restart (no Reset, the change made while it was down is heard); a server on
another database resyncs (Reset); and an edge whose feed hangs for more than a second still
refuses a removed member, because it asks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from devstack import free_port
from edge_service.feeds import AccessCache, FeedClient
from edge_service.policy import AccessView
from railguard.watch.v1 import watch_pb2, watch_pb2_grpc
from railguard.workspaces.v1 import workspaces_service_pb2, workspaces_service_pb2_grpc
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from servicekit import Registration, Settings, Wiring, changefeed, create_engine, session_factory
from servicekit.db import dispose_engine
from testkit import FakeClock, channel_as, fresh_database, running, test_settings
from workspaces_service.__main__ import MIGRATIONS, wire_service
from workspaces_service.adapters.tables import CHANGE_LOG
from workspaces_service.servicer import WorkspacesServicer

from tests.integration.workspaces.conftest import OWNER, USER, Directory, as_user


@contextlib.asynccontextmanager
async def _workspaces(
    pki: Path, database_url: str, port: int, grace: float = 0.2
) -> AsyncIterator[None]:
    directory = Directory()
    for uid in ("alice", "bob", "carol"):
        directory.add(uid)

    async def build(settings: Settings) -> Wiring:
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        service, relay = wire_service(sessions, FakeClock(), directory, relay_interval=0.05)
        feed = changefeed.ChangeFeed(sessions, CHANGE_LOG)
        registration = Registration(
            workspaces_service_pb2_grpc.add_WorkspacesServiceServicer_to_server,
            WorkspacesServicer(service),
            workspaces_service_pb2,
        )
        return Wiring(
            [registration, changefeed.registration(feed)],
            on_stop=[functools.partial(dispose_engine, engine), relay.stop, feed.close],
        )

    settings = test_settings(
        "workspaces",
        pki,
        database_url,
        {"RAILGUARD_LISTEN": f"127.0.0.1:{port}", "RAILGUARD_GRACE_SECONDS": str(grace)},
    )
    async with running(settings, build, MIGRATIONS):
        yield


class _Forwarder:
    """A TCP hop between the edge's feed channel and the server that can hang (bytes stop
    flowing, connections stay open): the nastiest way for a stream to die."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    await self._flowing.wait()
                    dst.write(data)
                    await dst.drain()
            dst.close()

        for task in (
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def hang(self, hung: bool) -> None:
        if hung:
            self._flowing.clear()
        else:
            self._flowing.set()

    async def close(self) -> None:
        self._flowing.set()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()


class _Resolver:
    """The edge's ResolveAccess call, counted."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = workspaces_service_pb2_grpc.WorkspacesServiceStub(channel)
        self.calls = 0

    async def resolve(self, user_id: str, workspace_id: str) -> AccessView:
        self.calls += 1
        r = await self._stub.ResolveAccess(
            pb.ResolveAccessRequest(user_id=user_id, workspace_id=workspace_id)
        )
        return AccessView(
            r.workspace_exists,
            r.member,
            r.role,
            r.state == pb.WORKSPACE_STATE_DELETED,
            r.mfa_required,
            r.plan,
        )


async def _eventually(condition: Callable[[], bool], within: float = 10.0) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not condition():
        assert loop.time() - started < within, "condition not reached in time"
        await asyncio.sleep(0.01)
    return loop.time() - started


async def _team(stub: workspaces_service_pb2_grpc.WorkspacesServiceStub) -> str:
    ws = await stub.CreateWorkspace(
        pb.CreateWorkspaceRequest(workspace=pb.Workspace(display_name="Acme")),
        metadata=as_user("alice"),
    )
    ws_id = ws.name.split("/")[1]
    await stub.CreateMember(
        pb.CreateMemberRequest(
            parent=ws.name, member=pb.Member(email="carol@example.com", role=USER)
        ),
        metadata=as_user("alice", ws_id, OWNER),
    )
    return ws_id


async def test_only_the_edge_may_watch(pki: Path, database_url: str) -> None:
    port = free_port()
    keys_channel, edge_channel = channel_as("keys", pki, port), channel_as("edge", pki, port)
    try:
        async with _workspaces(pki, database_url, port):
            refused = watch_pb2_grpc.ChangeFeedServiceStub(keys_channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for _ in refused.Watch(watch_pb2.WatchRequest()):
                    break
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            edge = watch_pb2_grpc.ChangeFeedServiceStub(edge_channel)
            call = edge.Watch(watch_pb2.WatchRequest())
            first = await anext(aiter(call))
            assert first.WhichOneof("event") == "reset"
            call.cancel()
    finally:  # an open channel left to the loop's teardown can hang it
        await keys_channel.close()
        await edge_channel.close()


async def test_changes_reach_the_edge_and_the_stream_survives_a_restart(
    pki: Path, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    channel = channel_as("edge", pki, port)
    feed = FeedClient("workspaces", channel)
    resolver = _Resolver(channel)
    cache = AccessCache(resolver, lambda: feed.live)
    resets: list[int] = []
    feed.on_change.append(cache.on_change)
    feed.on_reset.append(cache.clear)
    feed.on_reset.append(lambda: resets.append(1))
    stub = workspaces_service_pb2_grpc.WorkspacesServiceStub(channel)
    try:
        async with _workspaces(pki, database_url, port):
            ws_id = await _team(stub)
            feed.start()
            await _eventually(lambda: feed.live)
            assert (await cache.resolve("carol", ws_id)).role == USER
            await cache.resolve("carol", ws_id)
            assert resolver.calls == 1, "live: the second decision came from pushed state"
            await stub.DeleteMember(
                pb.DeleteMemberRequest(name=f"workspaces/{ws_id}/members/carol"),
                metadata=as_user("alice", ws_id, OWNER),
            )
            took = await _eventually(lambda: len(cache) == 0)
            assert took < 1.0, f"the removal reached the edge in {took:.3f} s"
            assert not (await cache.resolve("carol", ws_id)).member
            version = feed.version
        # the backend is down: the edge is not live, so it would ask (and fail closed)
        await _eventually(lambda: not feed.live, within=3.0)
        connects = feed.connects
        async with _workspaces(pki, database_url, port):
            await stub.CreateMember(
                pb.CreateMemberRequest(
                    parent=f"workspaces/{ws_id}",
                    member=pb.Member(email="bob@example.com", role=USER),
                ),
                metadata=as_user("alice", ws_id, OWNER),
                wait_for_ready=True,  # the test's channel has gRPC's default reconnect backoff
            )
            await _eventually(lambda: feed.live and feed.version > version)
            assert feed.connects > connects and resets == [1], "resumed, not reset"
            await cache.resolve("bob", ws_id)
            assert len(cache) >= 1  # something to drop (carol, refused, is kept too)
        # a server on another database (a restore, a new cluster): the edge resyncs
        async with fresh_database(
            "sqlite" if database_url.startswith("sqlite") else "postgres", tmp_path, "other"
        ) as other:
            async with _workspaces(pki, other, port):
                await _eventually(lambda: len(resets) == 2 and feed.live)
                assert len(cache) == 0
    finally:
        await feed.close()
        await channel.close()


async def test_an_edge_whose_feed_hangs_still_refuses_a_removed_member(
    pki: Path, database_url: str
) -> None:
    port = free_port()
    async with _workspaces(pki, database_url, port):
        direct = channel_as("edge", pki, port)
        hop = _Forwarder(port)
        await hop.start()
        feed_channel = channel_as("edge", pki, hop.port)
        feed = FeedClient("workspaces", feed_channel)
        resolver = _Resolver(direct)
        cache = AccessCache(resolver, lambda: feed.live)
        feed.on_change.append(cache.on_change)
        feed.on_reset.append(cache.clear)
        stub = workspaces_service_pb2_grpc.WorkspacesServiceStub(direct)
        try:
            ws_id = await _team(stub)
            feed.start()
            await _eventually(lambda: feed.live)
            assert (await cache.resolve("carol", ws_id)).member
            assert len(cache) == 1
            hop.hang(True)  # no message gets through any more; nothing tells the edge
            await stub.DeleteMember(
                pb.DeleteMemberRequest(name=f"workspaces/{ws_id}/members/carol"),
                metadata=as_user("alice", ws_id, OWNER),
            )
            took = await _eventually(lambda: not feed.live, within=3.0)
            assert took <= 1.3, f"live for {took:.2f} s without a message"
            assert len(cache) == 1, "the invalidation never arrived: the stale entry is there"
            view = await cache.resolve("carol", ws_id)
            assert not view.member, "not live: the edge asked, and refuses the removed member"
            hop.hang(False)
            await _eventually(lambda: feed.live, within=10.0)
        finally:
            await feed.close()
            await hop.close()
            await feed_channel.close()
            await direct.close()


async def test_a_watched_server_still_stops_without_waiting_out_its_grace(
    pki: Path, database_url: str
) -> None:
    """Watch streams never end on their own; shutdown ends them (the edge resumes elsewhere)."""
    port = free_port()
    channel = channel_as("edge", pki, port)
    feed = FeedClient("workspaces", channel)
    try:
        loop = asyncio.get_running_loop()
        async with _workspaces(pki, database_url, port, grace=5.0):
            feed.start()
            await _eventually(lambda: feed.live)
            stopping = loop.time()
        took = loop.time() - stopping
        assert took < 2.5, f"stopping took {took:.2f} s of a 5 s grace"
        await _eventually(lambda: not feed.synced, within=2.0)
    finally:
        await feed.close()
        await channel.close()
