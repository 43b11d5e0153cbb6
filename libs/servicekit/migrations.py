"""Per-service schema migrations with Alembic, one shared environment, one version table each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa
    from alembic.config import Config

__all__ = [
    "add_column_revision",
    "change_log_revision",
    "create_change_log_table",
    "create_lifecycle_table",
    "create_outbox_table",
    "drop_change_log_table",
    "drop_lifecycle_table",
    "drop_outbox_table",
    "id_column",
    "identifier",
    "lifecycle_revision",
    "make_purgeable",
    "paired_revision",
    "references",
    "timestamp",
    "upgrade",
    "versions_folder",
]

_ENV = Path(__file__).parent / "alembic"


def versions_folder(module_file: str) -> Path:
    """The Alembic revisions of the service whose package holds ``module_file`` (a module directly
    in ``src/<name>_service/``, such as its ``__main__``): ``services/<name>/migrations/versions``."""
    return Path(module_file).resolve().parents[2] / "migrations" / "versions"


def _config(database_url: str, service: str, versions: Path) -> Config:
    from alembic.config import Config  # imported here: a serving process never loads Alembic

    cfg = Config()
    cfg.set_main_option("script_location", str(_ENV))
    cfg.set_main_option("version_locations", str(versions))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["database_url"] = database_url
    cfg.attributes["version_table"] = f"alembic_version_{service}"
    return cfg


async def upgrade(database_url: str, service: str, versions: Path, revision: str = "head") -> None:
    """Bring the service's database to ``revision``; safe to run on every start, and concurrent
    runs on PostgreSQL queue on an advisory lock (see alembic/env.py)."""
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[-1]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    from alembic import command

    await asyncio.to_thread(command.upgrade, _config(database_url, service, versions), revision)


# --- the columns the services' tables share ----------------------------------------------------
# Every id is a String(64), every reference cascades on delete, every time is timezone-aware; a
# revision spells the column's name and nothing else it has in common with the others.


def id_column(name: str = "id") -> sa.Column[Any]:
    """The table's String(64) primary key."""
    import sqlalchemy as sa

    return sa.Column(name, sa.String(64), primary_key=True)


def identifier(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    """A String(64) id of a row held elsewhere (a workspace, a user, a caller's request): another
    service's rows cannot be a foreign key."""
    import sqlalchemy as sa

    return sa.Column(name, sa.String(64), nullable=nullable)


def references(name: str, target: str, *, primary_key: bool = False) -> sa.Column[Any]:
    """A String(64) reference to ``target`` ("table.column") whose rows go with the target's."""
    import sqlalchemy as sa

    fk = sa.ForeignKey(target, ondelete="CASCADE")
    if primary_key:
        return sa.Column(name, sa.String(64), fk, primary_key=True)
    return sa.Column(name, sa.String(64), fk, nullable=False)


def timestamp(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    """A timezone-aware time; ``nullable`` for the ones that are set when something happens."""
    import sqlalchemy as sa

    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


# --- operations the services' revisions share -------------------------------------------------
# Called from inside an Alembic revision (``op`` is bound then). The DDL is exactly what each
# revision used to spell out, so the schema a revision makes is unchanged.


def create_outbox_table(name: str) -> None:
    """Create the outbox table ``name`` (``servicekit.outbox.audit_outbox_columns``) and its
    ``ix_<name>_unsent`` index on (sent_at, seq)."""
    from alembic import op

    from servicekit.outbox import audit_outbox_columns

    op.create_table(name, *audit_outbox_columns())
    op.create_index(f"ix_{name}_unsent", name, ["sent_at", "seq"])


def drop_outbox_table(name: str) -> None:
    """Undo :func:`create_outbox_table`."""
    from alembic import op

    op.drop_index(f"ix_{name}_unsent", table_name=name)
    op.drop_table(name)


def make_purgeable(table: str, digest: str) -> None:
    """Let ``table``'s rows become purge tombstones: the secret's 32-byte ``digest`` may be
    erased (nullable), ``purged_at`` records when, and ``deleted_at`` is indexed for the purger.

    In a batch: SQLite cannot relax NOT NULL in place (the table is copied); PostgreSQL alters it.
    There is no undo: a purged secret cannot come back.
    """
    import sqlalchemy as sa
    from alembic import op

    with op.batch_alter_table(table) as batch:
        batch.alter_column(digest, existing_type=sa.LargeBinary(32), nullable=True)
        batch.add_column(timestamp("purged_at", nullable=True))
        batch.create_index(f"ix_{table}_deleted_at", ["deleted_at"])


def create_lifecycle_table() -> None:
    """Create a lifecycle receiver's ``workspace_lifecycle`` table (``servicekit.lifecycle``)."""
    from alembic import op

    from servicekit.lifecycle import lifecycle_table_columns

    op.create_table("workspace_lifecycle", *lifecycle_table_columns())


def drop_lifecycle_table() -> None:
    """Undo :func:`create_lifecycle_table`."""
    from alembic import op

    op.drop_table("workspace_lifecycle")


def create_change_log_table(service: str) -> None:
    """Create ``service``'s change log (``servicekit.changefeed``) and its ``created_at`` index."""
    from alembic import op

    from servicekit.changefeed import change_log_columns, change_log_name

    table = change_log_name(service)
    op.create_table(table, *change_log_columns(), sqlite_autoincrement=True)
    op.create_index(f"ix_{table}_created_at", table, ["created_at"])


def drop_change_log_table(service: str) -> None:
    """Undo :func:`create_change_log_table`."""
    from alembic import op

    from servicekit.changefeed import change_log_name

    table = change_log_name(service)
    op.drop_index(f"ix_{table}_created_at", table_name=table)
    op.drop_table(table)


def paired_revision(
    make: Callable[..., None], undo: Callable[..., None], *args: str
) -> tuple[Callable[[], None], Callable[[], None]]:
    """The ``upgrade`` and ``downgrade`` of a revision that is one shared operation and its undo.

    A revision module binds them (``upgrade, downgrade = change_log_revision("keys")``); Alembic
    calls them like functions defined in the module.
    """

    def upgrade() -> None:
        make(*args)

    def downgrade() -> None:
        undo(*args)

    return upgrade, downgrade


def change_log_revision(service: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """A revision that only adds ``service``'s change log."""
    return paired_revision(create_change_log_table, drop_change_log_table, service)


def lifecycle_revision() -> tuple[Callable[[], None], Callable[[], None]]:
    """A revision that only adds a lifecycle receiver's ``workspace_lifecycle`` table."""
    return paired_revision(create_lifecycle_table, drop_lifecycle_table)


def add_column_revision(
    table: str, column: Callable[[], sa.Column[Any]]
) -> tuple[Callable[[], None], Callable[[], None]]:
    """A revision that only adds ``column()`` to ``table`` (in a batch, as SQLite needs) and
    drops it again on the way down.

    A factory, not a column: a Column belongs to the one table it was first added to, and every
    run (each test database) needs a fresh one.
    """

    def upgrade() -> None:
        from alembic import op

        with op.batch_alter_table(table) as batch:
            batch.add_column(column())

    def downgrade() -> None:
        from alembic import op

        with op.batch_alter_table(table) as batch:
            batch.drop_column(column().name)

    return upgrade, downgrade
