"""The Store's download journal: the engine's DownloadJournal, one row per unfinished file."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.engine.hub.downloads import DownloadRecord
from app.models.store.database import Database
from app.models.tables import Download, utcnow

# In DownloadRecord's field order, so a row unpacks straight into one.
_DOWNLOAD_COLUMNS = [getattr(Download, name) for name in DownloadRecord.__dataclass_fields__]


class DownloadStore(Database):
    """Store mixin: downloads in progress, so they resume after a restart (the engine's
    DownloadJournal protocol)."""

    def save_download(self, record: DownloadRecord) -> None:
        values = {name: getattr(record, name) for name in DownloadRecord.__dataclass_fields__}
        values["updated_at"] = utcnow()
        statement = sqlite_insert(Download).values(**values)
        statement = statement.on_conflict_do_update(index_elements=[Download.key], set_=values)
        with self._writing() as session:
            session.execute(statement)

    def get_download(self, key: str) -> DownloadRecord | None:
        with self._reading() as conn:
            row = conn.execute(select(*_DOWNLOAD_COLUMNS).where(Download.key == key)).first()
        return DownloadRecord(*row) if row else None

    def list_downloads(self) -> list[DownloadRecord]:
        with self._reading() as conn:
            rows = conn.execute(select(*_DOWNLOAD_COLUMNS).order_by(Download.updated_at)).all()
        return [DownloadRecord(*row) for row in rows]

    def delete_download(self, key: str) -> None:
        with self._writing() as session:
            session.execute(delete(Download).where(Download.key == key))
