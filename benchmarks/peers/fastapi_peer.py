"""FastAPI + fastapi-users: ``seed`` a user, a workspace and a membership, or ``serve`` them.

``python fastapi_peer.py seed --db URL --secret S`` prints ``{"token", "workspace_id"}``;
``python fastapi_peer.py serve --db URL --secret S --port P --certs DIR [--standard]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, JWTStrategy
from fastapi_users.db import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from fastapi_users.password import PasswordHelper
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class Workspace(Base):
    __tablename__ = "workspace"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(32))
    retention_days: Mapped[int]
    state: Mapped[str] = mapped_column(String(32))
    create_time: Mapped[str] = mapped_column(String(32))
    update_time: Mapped[str] = mapped_column(String(32))


class Membership(Base):
    __tablename__ = "membership"
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspace.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))


def build(db: str, secret: str) -> tuple[FastAPI, Any]:
    engine = create_async_engine(db, pool_size=16, max_overflow=16)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def get_session() -> AsyncIterator[AsyncSession]:
        async with sessions() as session:
            yield session

    async def get_user_db(
        session: AsyncSession = Depends(get_session),
    ) -> AsyncIterator[SQLAlchemyUserDatabase[User, uuid.UUID]]:
        yield SQLAlchemyUserDatabase(session, User)

    class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
        reset_password_token_secret = secret
        verification_token_secret = secret

    async def get_user_manager(
        user_db: SQLAlchemyUserDatabase[User, uuid.UUID] = Depends(get_user_db),
    ) -> AsyncIterator[UserManager]:
        yield UserManager(user_db)

    def get_strategy() -> JWTStrategy[User, uuid.UUID]:
        return JWTStrategy(secret=secret, lifetime_seconds=3600)

    backend = AuthenticationBackend(
        name="jwt", transport=BearerTransport(tokenUrl="auth/login"), get_strategy=get_strategy
    )
    users = FastAPIUsers[User, uuid.UUID](get_user_manager, [backend])
    current_user = users.current_user(active=True)
    app = FastAPI()

    @app.get("/v1/workspaces/{workspace_id}")
    async def get_workspace(
        workspace_id: str,
        user: User = Depends(current_user),
        session: AsyncSession = Depends(get_session),
    ) -> dict[str, Any]:
        row = (
            await session.execute(
                select(Workspace, Membership.role)
                .join(Membership, Membership.workspace_id == Workspace.id)
                .where(Workspace.id == workspace_id, Membership.user_id == user.id)
            )
        ).first()
        if row is None:
            raise HTTPException(status_code=404, detail="not found")
        workspace, role = row
        return {
            "name": f"workspaces/{workspace.id}",
            "displayName": workspace.display_name,
            "plan": workspace.plan,
            "retentionDays": workspace.retention_days,
            "state": workspace.state,
            "createTime": workspace.create_time,
            "updateTime": workspace.update_time,
            "callerRole": role,
        }

    return app, (engine, sessions, get_strategy)


async def seed(db: str, secret: str) -> dict[str, str]:
    app, (engine, sessions, get_strategy) = build(db, secret)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    user = User(
        id=uuid.uuid4(),
        email=f"peer-{uuid.uuid4().hex[:8]}@example.com",
        hashed_password=PasswordHelper().hash("correct horse battery staple"),
        is_active=True,
        is_superuser=False,
        is_verified=True,
    )
    workspace_id = uuid.uuid4().hex
    async with sessions() as session:
        session.add(user)
        session.add(
            Workspace(
                id=workspace_id,
                display_name="Benchmark",
                plan="PLAN_FREE",
                retention_days=30,
                state="WORKSPACE_STATE_ACTIVE",
                create_time="2024-01-01T00:00:00Z",
                update_time="2024-01-01T00:00:00Z",
            )
        )
        await session.flush()
        session.add(Membership(workspace_id=workspace_id, user_id=user.id, role="ROLE_OWNER"))
        await session.commit()
    token = await get_strategy().write_token(user)
    await engine.dispose()
    return {"token": token, "workspace_id": workspace_id}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=("seed", "serve"))
    parser.add_argument("--db", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--certs", type=Path)
    parser.add_argument("--standard", action="store_true", help="uvloop + httptools")
    args = parser.parse_args()
    if args.command == "seed":
        print(json.dumps(asyncio.run(seed(args.db, args.secret))), flush=True)
        return
    import uvicorn

    app, _ = build(args.db, args.secret)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        ssl_certfile=str(args.certs / "edge.crt"),
        ssl_keyfile=str(args.certs / "edge.key"),
        ssl_ciphers=TLS12_CIPHERS,
        loop="uvloop" if args.standard else "asyncio",
        http="httptools" if args.standard else "h11",
        log_level="warning",
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
