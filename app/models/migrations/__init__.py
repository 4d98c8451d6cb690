"""Alembic environment for the Hearth database, driven from code (no alembic.ini needed).

Developers can make a new revision with, for example::

    python -c "from alembic import command; from app.models.migrations import make_config; \
command.revision(make_config('sqlite:///dev.db'), 'message', autogenerate=True)"
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).resolve().parent

# SQLite creates these for the FTS5 indexes; they live outside the ORM metadata on purpose.
FTS_TABLE_PREFIX = ("messages_fts", "chunks_fts")


def make_config(url: str | None = None) -> Config:
    """An Alembic Config pointing at this folder; pass a connection via `config.attributes`."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url)
    return config


def migrate_to(db_path: Path, revision: str, *, down: bool = False) -> None:
    """Upgrade (or, ``down``, downgrade) the SQLite file at ``db_path`` to ``revision``: for
    tests that build a database as an older Hearth left it."""
    from alembic import command
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.begin() as connection:
            config = make_config()
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()
