"""The live audit-event stream: ``wss://…/v1/workspaces/{id}/auditEvents:stream``.

The edge's one hand-written WebSocket route. It shares the HTTPS listener, so it is WSS only
(DESIGN R5). The handshake is authenticated and authorized exactly like ``ListAuditEvents`` (its
access rule is read from the contract): Admin+, API keys need ``audit:read``, a non-member gets
the same 404 as a missing workspace. Credentials never travel in the URL:

- ``Authorization: Bearer <token or key>`` or ``X-API-Key`` (non-browser clients);
- ``Sec-WebSocket-Protocol: railguard.bearer, <token or key>`` (browsers, which cannot set
  headers on a WebSocket); only ``railguard.bearer`` is echoed back.

A refused handshake is answered with the usual problem+json (401/403/404/429) when the server
supports the WebSocket denial-response extension, otherwise by closing before accepting (the
server then answers 403). Once open, every event after ``?after=<sequence>`` is sent as one JSON
text frame (the ``AuditEvent`` as ``ListAuditEvents`` renders it), then each new one as it is
appended. The credential and the caller's access are checked again every ``recheck`` seconds: an
expired token, an ended session, a revoked key or a lost role closes the stream with 1008 (policy
violation).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import anyio
import anyio.abc
import grpc
from railguard.access.v1 import access_pb2
from railguard.workspaces.v1 import workspaces_service_pb2 as ws_pb
from servicekit import errors
from servicekit.clients import outgoing_metadata
from servicekit.context import Principal
from servicekit.status import error_from_rpc
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from edge_service.gateway import Gateway, request_id_of
from edge_service.policy import authorize
from edge_service.problems import problem_from_error, problem_from_rpc
from edge_service.transcode import render_response

__all__ = [
    "LIST_AUDIT_EVENTS",
    "PATH",
    "STREAM_AUDIT_EVENTS",
    "SUBPROTOCOL",
    "AuditStreamRoute",
    "GrpcAuditStreams",
]

PATH = "/v1/workspaces/{workspace}/auditEvents:stream"
SUBPROTOCOL = "railguard.bearer"
LIST_AUDIT_EVENTS = "/railguard.workspaces.v1.WorkspacesService/ListAuditEvents"
STREAM_AUDIT_EVENTS = "/railguard.workspaces.v1.WorkspacesService/StreamAuditEvents"

# close codes (RFC 6455 §7.4.1)
NORMAL, POLICY_VIOLATION, INTERNAL_ERROR, SERVICE_RESTART = 1000, 1008, 1011, 1012

_log = logging.getLogger("edge.ws")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_SEQUENCE = 2**63 - 1
_POLICY_CODES = {
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
}


class AuditStreams(Protocol):
    def open(
        self, request: ws_pb.StreamAuditEventsRequest, principal: Principal, request_id: str
    ) -> AsyncIterator[ws_pb.AuditEvent]: ...


class GrpcAuditStreams:
    """``StreamAuditEvents`` over the edge's mTLS channel to the workspaces service."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._method: grpc.aio.UnaryStreamMultiCallable[
            ws_pb.StreamAuditEventsRequest, ws_pb.AuditEvent
        ] = channel.unary_stream(
            STREAM_AUDIT_EVENTS,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=ws_pb.AuditEvent.FromString,
        )

    async def open(
        self, request: ws_pb.StreamAuditEventsRequest, principal: Principal, request_id: str
    ) -> AsyncIterator[ws_pb.AuditEvent]:
        call = self._method(request, metadata=outgoing_metadata(principal, request_id))
        try:
            async for event in call:
                yield event
        finally:
            call.cancel()  # the client went away or the edge stops: end the upstream stream


@dataclass(frozen=True, slots=True)
class _Credential:
    kind: str  # "jwt" | "key"
    secret: str
    subprotocol: str | None  # what to echo back on accept


class _Closed(Exception):
    """End the stream with this close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class AuditStreamRoute:
    """The WebSocket endpoint; one instance per edge process."""

    def __init__(
        self,
        gateway: Gateway,
        streams: AuditStreams,
        rule: access_pb2.AccessRule,
        *,
        recheck: float = 5.0,
        max_streams: int = 1000,
        max_per_caller: int = 5,
    ) -> None:
        self.gateway, self.streams, self.rule = gateway, streams, rule
        self.recheck, self.max_streams, self.max_per_caller = recheck, max_streams, max_per_caller
        self._open: dict[str, int] = {}

    # --- handshake -------------------------------------------------------------------------

    def _credential(self, websocket: WebSocket) -> _Credential:
        """The gateway's credentials, plus the browser's ``railguard.bearer, <token>`` subprotocol."""
        offered = list(websocket.scope.get("subprotocols") or ())
        token, subprotocol = "", None
        if SUBPROTOCOL in offered:
            position = offered.index(SUBPROTOCOL)
            token = offered[position + 1] if position + 1 < len(offered) else ""
            if not token:
                raise errors.Unauthenticated(
                    f"send the token after {SUBPROTOCOL} in Sec-WebSocket-Protocol",
                    reason="UNAUTHENTICATED",
                )
            subprotocol = SUBPROTOCOL
        kind, secret = self.gateway.credentials(websocket, token)
        if not kind:
            raise errors.Unauthenticated("authentication required", reason="UNAUTHENTICATED")
        return _Credential(kind, secret, subprotocol if secret == token else None)

    async def _authorize(
        self,
        credential: _Credential,
        client_ip: str,
        origin: str,
        workspace_id: str,
        handshake: WebSocket | None = None,
    ) -> tuple[Principal, int]:
        async def authenticate() -> Principal:
            return await self.gateway.principal_for(
                credential.kind, credential.secret, client_ip, origin, self.rule.scope
            )

        # at the handshake a failed authentication counts against the client IP, as on any route
        principal = await (
            self.gateway.counted(handshake, client_ip, authenticate)
            if handshake is not None
            else authenticate()
        )
        forwarded, view = await authorize(self.rule, principal, workspace_id, self.gateway.access)
        return dataclasses.replace(forwarded, client_ip=client_ip), view.plan if view else 0

    @staticmethod
    def _after(websocket: WebSocket) -> int:
        raw = websocket.query_params.get("after", "0") or "0"
        if not raw.isdigit() or int(raw) > _MAX_SEQUENCE:
            raise errors.InvalidArgument.field(
                "after", "must be a sequence number (0 or more)", reason="INVALID_SEQUENCE"
            )
        return int(raw)

    async def _deny(self, websocket: WebSocket, response: Response, request_id: str) -> None:
        response.headers["X-Request-Id"] = request_id
        for name, value in getattr(websocket.state, "limit_headers", {}).items():
            response.headers.setdefault(name, value)  # a limited refusal says so
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(response)
        else:
            await websocket.close(code=POLICY_VIOLATION)  # before accept: the server answers 403

    # --- the stream ------------------------------------------------------------------------

    async def handle(self, websocket: WebSocket) -> None:
        request_id = request_id_of(websocket)
        started = time.monotonic()
        workspace_id = str(websocket.path_params.get("workspace", ""))
        who = ""
        code, reason = NORMAL, ""
        try:
            if not _ID.match(workspace_id):
                raise errors.InvalidArgument.field(
                    "parent", "is not a valid resource name", reason="INVALID_NAME"
                )
            after = self._after(websocket)
            client_ip = self.gateway.client_ip_of(websocket)
            origin = websocket.headers.get("origin", "")
            credential = self._credential(websocket)
            forwarded, plan = await self._authorize(
                credential, client_ip, origin, workspace_id, websocket
            )
            who = (
                f"key:{forwarded.api_key_id}"
                if forwarded.api_key_id
                else f"user:{forwarded.user_id}"
            )
            await self.gateway._limit(who, self.rule.rate_limit, plan)
            if sum(self._open.values()) >= self.max_streams:
                raise errors.ResourceExhausted(
                    "too many audit streams; retry later", reason="TOO_MANY_STREAMS", retry_after=5
                )
            if self._open.get(who, 0) >= self.max_per_caller:
                raise errors.ResourceExhausted(
                    f"at most {self.max_per_caller} audit streams per caller",
                    reason="TOO_MANY_STREAMS",
                    retry_after=5,
                )
        except errors.RailguardError as exc:
            await self._deny(websocket, problem_from_error(exc, request_id), request_id)
            self._log(request_id, workspace_id, 0, started, exc.reason)
            return
        except grpc.aio.AioRpcError as exc:
            await self._deny(websocket, problem_from_rpc(exc, request_id), request_id)
            self._log(request_id, workspace_id, 0, started, exc.code().name)
            return
        self._open[who] = self._open.get(who, 0) + 1
        try:
            await websocket.accept(subprotocol=credential.subprotocol)
            request = ws_pb.StreamAuditEventsRequest(
                parent=f"workspaces/{workspace_id}", after_sequence=after
            )
            code, reason = await self._run(
                websocket,
                request,
                forwarded,
                request_id,
                lambda: self._authorize(credential, client_ip, origin, workspace_id),
            )
        finally:
            self._open[who] -= 1
            if not self._open[who]:
                del self._open[who]
        if websocket.application_state == WebSocketState.CONNECTED and code:
            with contextlib.suppress(Exception):  # the peer may already be gone
                await websocket.close(code=code, reason=reason)
        self._log(request_id, workspace_id, code, started, reason)

    async def _run(  # noqa: C901 - the WebSocket lifecycle, each close code in one place
        self,
        websocket: WebSocket,
        request: ws_pb.StreamAuditEventsRequest,
        principal: Principal,
        request_id: str,
        reauthorize: Callable[[], Awaitable[object]],
    ) -> tuple[int, str]:
        """Pump events until one side ends; the close code and reason (0: the client left)."""

        async def pump() -> None:
            async for event in self.streams.open(request, principal, request_id):
                await websocket.send_text(json.dumps(render_response(event)))
            raise _Closed(NORMAL, "")

        async def listen() -> None:
            while True:  # client frames are read and ignored; this notices the disconnect
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    raise _Closed(0, "")

        async def watch() -> None:
            while True:
                await anyio.sleep(self.recheck)
                try:
                    await reauthorize()
                except errors.RailguardError as exc:
                    raise _Closed(POLICY_VIOLATION, exc.reason) from None

        outcomes: list[tuple[int, str]] = []

        async def run(part: Callable[[], Awaitable[None]], group: anyio.abc.TaskGroup) -> None:
            try:
                await part()
            except _Closed as closed:
                outcomes.append((closed.code, closed.reason))
            except WebSocketDisconnect:
                outcomes.append((0, ""))
            except grpc.aio.AioRpcError as exc:
                outcomes.append(self._upstream_outcome(exc, request_id))
            except Exception:
                _log.exception("audit stream failed", extra={"request_id": request_id})
                outcomes.append((INTERNAL_ERROR, "INTERNAL"))
            group.cancel_scope.cancel()  # the first part to end ends the others

        async with anyio.create_task_group() as group:
            for part in (pump, listen, watch):
                group.start_soon(run, part, group)
        return outcomes[0] if outcomes else (0, "")

    @staticmethod
    def _upstream_outcome(exc: grpc.aio.AioRpcError, request_id: str) -> tuple[int, str]:
        status = exc.code()
        if status in _POLICY_CODES:
            return POLICY_VIOLATION, error_from_rpc(exc).reason
        if status in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            return SERVICE_RESTART, "SERVICE_UNAVAILABLE"
        _log.warning(
            "audit stream failed", extra={"grpc_code": status.name, "request_id": request_id}
        )
        return INTERNAL_ERROR, "INTERNAL"

    @staticmethod
    def _log(request_id: str, workspace_id: str, code: int, started: float, reason: str) -> None:
        _log.info(
            "ws",
            extra={
                "request_id": request_id,
                "path": f"/v1/workspaces/{workspace_id}/auditEvents:stream",
                "close_code": code,
                "reason": reason,
                "duration_ms": round((time.monotonic() - started) * 1000, 2),
            },
        )
