"""Opening the store: the engine for INTAKE_DATABASE_URL and its schema brought to head.

SQLite (the default, a file under var/) runs in WAL mode with ``synchronous=FULL``: a
commit is on disk before the webhook answers 200. PostgreSQL (``postgresql+asyncpg://``)
is shared by every API replica; its migrations run under an advisory lock, so replicas
starting together migrate once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key for migrations ("reactor" in ASCII, as a number).
MIGRATION_LOCK = 0x7265616374_6F72 % (2**63)
# How long a SQLite writer waits for another (the forwarder, another process) to commit.
SQLITE_BUSY_MS = 3000


class StoreError(Exception):
    """The store could not be opened or migrated."""


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.close()


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """The engine of the store (``options`` go to SQLAlchemy); a SQLite file's folder is
    created when missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    pooled = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10}
    return create_async_engine(url, **{**pooled, **options})


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    command.upgrade(alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


def describe(url: str) -> str:
    """The URL without its password, for logs and errors."""
    return make_url(url).render_as_string(hide_password=True)


async def open_engine(url: str, *, migrate_schema: bool = True, **options: Any) -> AsyncEngine:
    engine = create_engine(url, **options)
    if migrate_schema:
        try:
            await migrate(engine)
        except Exception as err:
            await engine.dispose()
            raise StoreError(f"cannot prepare the store at {describe(url)}: {err}") from err
    return engine
