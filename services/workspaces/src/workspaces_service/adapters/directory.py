"""The user directory: finds users by email through the auth service's internal LookupUser RPC."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from railguard.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from servicekit.clients import call
from servicekit.errors import NotFound


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    id: str
    email: str


class AuthDirectory:
    """A ``UserDirectory`` backed by the auth service."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = auth_service_pb2_grpc.AuthServiceStub(channel)

    async def find_by_email(self, email: str) -> DirectoryUser | None:
        return await self._lookup(auth_service_pb2.LookupUserRequest(email=email))

    async def find_by_id(self, user_id: str) -> DirectoryUser | None:
        return await self._lookup(auth_service_pb2.LookupUserRequest(user_id=user_id))

    async def _lookup(self, request: auth_service_pb2.LookupUserRequest) -> DirectoryUser | None:
        try:
            user = await call(self._stub.LookupUser, request)
        except NotFound:
            return None
        return DirectoryUser(user.id, user.email)
