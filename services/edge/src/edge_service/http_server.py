"""The edge's HTTP server: uvicorn's h11 protocol and server, with two of their habits replaced.

* The HTTP server's own refusals (a malformed request → 400, a request head larger than
  ``max_head_bytes`` → 431) are problem+json with the security headers and a request id, like
  every other answer of the edge port; uvicorn would write a text/plain 400 for both.
* Shutdown (SIGTERM/SIGINT): stop accepting, close idle keep-alive connections at once, let
  in-flight requests finish (their responses carry ``Connection: close``) within the grace, then
  return normally so the process exits 0. uvicorn re-raises the signal after serving (exit -15,
  skipping our shutdown hooks), and a TLS connection it closes stays open until the peer answers
  its close_notify, so an idle pooled client kept it waiting for the whole grace; here a
  connection that is closing but has not gone within ``_CLOSE_WAIT`` seconds is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Generator, Sequence
from typing import Any

import h11
import uvicorn
from servicekit.context import new_request_id
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

from edge_service.problems import problem_response

__all__ = ["EdgeServer", "edge_protocol"]

_log = logging.getLogger("edge.http")
_CLOSE_WAIT = 0.2  # seconds a closing connection may take to say goodbye before it is aborted


def edge_protocol(
    security_headers: Sequence[tuple[bytes, bytes]], max_head_bytes: int
) -> type[H11Protocol]:
    """An h11 protocol class whose own error answers follow the edge's error contract."""
    extra = list(security_headers)

    class EdgeH11Protocol(H11Protocol):
        def data_received(self, data: bytes) -> None:
            # h11 bounds only a head that is still incomplete: one that arrives whole in a
            # single read is accepted at any size, so the head is measured here first
            if self.conn.their_state is h11.IDLE:
                pending = self.conn.trailing_data[0] + data  # at most max_head_bytes + data
                end = pending.find(b"\r\n\r\n")
                if end > max_head_bytes or (end == -1 and len(pending) > max_head_bytes):
                    self._unset_keepalive_if_required()
                    self._refuse_head_too_large()
                    return
            super().data_received(data)

        def send_400_response(self, msg: str) -> None:
            # h11 refuses a head that outgrew its buffer with "Receive buffer too long"; the
            # buffered bytes tell that apart from any other malformed request: more than the
            # limit, and no end of the head within it
            buffered = self.conn.trailing_data[0]
            if len(buffered) > max_head_bytes and b"\r\n\r\n" not in buffered[: max_head_bytes + 4]:
                self._refuse_head_too_large()
            else:
                self._refuse(400, "MALFORMED_REQUEST", "the request is not valid HTTP/1.1")

        def _refuse_head_too_large(self) -> None:
            self._refuse(
                431,
                "REQUEST_HEADERS_TOO_LARGE",
                f"the request line and headers exceed {max_head_bytes} bytes",
            )

        def _refuse(self, status: int, code: str, detail: str) -> None:
            """Answer problem+json and close: the request could not be read, so nothing after
            it on this connection can be either."""
            request_id = new_request_id()
            response = problem_response(status, code, detail, request_id)
            headers = [
                *response.raw_headers,
                *extra,
                (b"x-request-id", request_id.encode()),
                (b"connection", b"close"),
            ]
            try:
                self.transport.write(
                    self.conn.send(
                        h11.Response(
                            status_code=status, headers=headers, reason=STATUS_PHRASES[status]
                        )
                    )
                    or b""
                )
                self.transport.write(self.conn.send(h11.Data(data=bytes(response.body))) or b"")
                self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
            except h11.LocalProtocolError:
                pass  # a response had already started: nothing valid can be said any more
            self.transport.close()

        def shutdown(self) -> None:
            cycle = self.cycle
            closing = (b"connection", b"close")
            if (
                cycle is not None
                and not cycle.response_started
                and closing not in cycle.default_headers
            ):
                # the in-flight response says that the connection ends with it (RFC 9112 §9.6)
                cycle.default_headers = [*cycle.default_headers, closing]
            super().shutdown()

    return EdgeH11Protocol


def _closing(connection: Any) -> bool:
    transport = getattr(connection, "transport", None)
    return transport is None or bool(transport.is_closing())


class EdgeServer(uvicorn.Server):
    """uvicorn's server with the edge's signal handling and shutdown (see the module docstring)."""

    def __init__(
        self, config: uvicorn.Config, grace_seconds: float, *, worker: bool = False
    ) -> None:
        super().__init__(config)
        self.grace_seconds = grace_seconds
        self.worker = worker  # SIGUSR1 = stop accepting (edge_service.workers), before SIGTERM

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        if self.worker:
            loop.add_signal_handler(signal.SIGUSR1, self.stop_accepting)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            if self.worker:
                loop.remove_signal_handler(signal.SIGUSR1)

    def stop_accepting(self) -> None:
        """A worker's first stop step: no new connections, and each response in flight is its
        connection's last (``Connection: close``); idle connections stay until :meth:`shutdown`.

        The supervisor sends SIGTERM (the second step) only once every worker has done this,
        so no worker closes an idle connection while another still accepts or answers as if
        it were not stopping.
        """
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            cycle = getattr(connection, "cycle", None)
            if cycle is not None and not cycle.response_complete and not _closing(connection):
                connection.shutdown()  # busy: keep-alive off, the response says close

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:  # noqa: C901 - the shutdown sequence, step by step
        loop = asyncio.get_running_loop()
        for server in self.servers:
            server.close()  # no new connections
        for sock in sockets or []:
            sock.close()
        connections: set[Any] = self.server_state.connections
        for connection in list(connections):
            if _closing(connection):
                # closing already (a response that ended it): asyncio's SSL transport forgets
                # its connection on a second close(), and abort() below would then do nothing
                continue
            connection.shutdown()  # idle ones close now; busy ones close after their response
        deadline = loop.time() + self.grace_seconds
        closing_since: dict[int, float] = {}
        while (connections or self.server_state.tasks) and loop.time() < deadline:
            now = loop.time()
            for connection in list(connections):
                transport = getattr(connection, "transport", None)
                if transport is None or not transport.is_closing():
                    continue
                since = closing_since.setdefault(id(connection), now)
                if now - since >= _CLOSE_WAIT:
                    transport.abort()  # a TLS peer that never answers close_notify
            await asyncio.sleep(0.02)
        if connections or self.server_state.tasks:
            _log.warning(
                "shutdown grace ended; dropping what is left",
                extra={
                    "connections": len(connections),
                    "requests": len(self.server_state.tasks),
                },
            )
            for task in list(self.server_state.tasks):
                task.cancel()
            for connection in list(connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.abort()
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()
