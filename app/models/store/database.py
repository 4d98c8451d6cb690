"""The Store's connection to its SQLite file: pragmas, schema upgrade, and short transactions.

Every Store method opens its own short Session (writes) or Connection (reads) and returns frozen
records, never ORM objects, so any thread may call it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from alembic import command
from sqlalchemy import URL, Engine, create_engine, event, text
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session, sessionmaker

from app.models.migrations import make_config
from app.models.writer_lock import WriterLock, lock_folder

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000


def _configure_engine(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (see _on_begin): the sqlite3 module's legacy mode
        # skips BEGIN before DDL, which would make migrations non-atomic.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("SQLite refused WAL mode (got %s); continuing in that mode", mode)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front, so busy_timeout applies instead of a deadlock
        # error when a read transaction later tries to upgrade.
        conn.exec_driver_sql(conn.get_execution_options().get("hearth_begin", "BEGIN"))


class Database:
    """The part of the Store every aggregate shares; the aggregates are mixins on top of it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = WriterLock(lock_folder(engine.url.database))
        self._write = sessionmaker(
            engine.execution_options(hearth_begin="BEGIN IMMEDIATE"), expire_on_commit=False
        )

    @classmethod
    def open(cls, db_path: Path) -> Self:
        """Open (creating if needed) the database and bring its schema up to date."""
        db_path = Path(db_path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            URL.create("sqlite", database=str(db_path)),
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        )
        _configure_engine(engine)
        try:
            with engine.begin() as connection:
                config = make_config()
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except Exception:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        self._engine.dispose()
        self._writer.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        with self._write.begin() as session:
            yield session

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        # Reads need no unit of work; a bare Connection skips the Session's per-row overhead.
        with self._engine.connect() as connection:
            yield connection

    def _update(self, statement: Any) -> bool:
        with self._writing() as session:
            return session.execute(statement).rowcount > 0

    def integrity_ok(self) -> bool:
        with self._reading() as conn:
            rows: Sequence[Row[Any]] = conn.execute(text("PRAGMA integrity_check")).all()
        return [tuple(row) for row in rows] == [("ok",)]
