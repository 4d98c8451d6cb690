"""The Store: the only code in Hearth that talks SQL.

Every method opens its own short Session (writes) or Connection (reads) and returns frozen
records, never ORM objects, so any thread may call it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from alembic import command
from sqlalchemy import (
    URL,
    Engine,
    create_engine,
    delete,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.engine.hub.downloads import DownloadRecord
from app.engine.inference.events import MemoryCheck as MemoryCheckEvent
from app.engine.quantize.quality import QualityReport as QualityReportValue
from app.engine.quantize.quality import QualityRow
from app.engine.types import ModelInfo, Sampling
from app.models.message_tree import MessageTree
from app.models.migrations import make_config
from app.models.records import (
    MODEL_SOURCES,
    OVERFLOW_POLICIES,
    ChatRecord,
    LineageRecord,
    MemoryCheckRecord,
    ModelFileRecord,
    ModelSource,
    OverflowPolicy,
    PresetRecord,
    QualityReportRecord,
    SearchHit,
)
from app.models.store_values import UNSET, _Unset, check
from app.models.tables import (
    Chat,
    Download,
    MemoryCheck,
    ModelFile,
    ModelLineage,
    Preset,
    QualityReport,
    QualityResult,
    Setting,
    utcnow,
)
from app.models.writer_lock import WriterLock, lock_folder

log = logging.getLogger(__name__)

_LINEAGE_COLUMNS = [getattr(ModelLineage, name) for name in LineageRecord.__dataclass_fields__]
_QUALITY_ROW_COLUMNS = [getattr(QualityResult, name) for name in QualityRow.__dataclass_fields__]
# In MemoryCheckRecord's field order, so a row unpacks straight into one.
_MEMORY_CHECK_COLUMNS = [getattr(MemoryCheck, name)
                         for name in MemoryCheckRecord.__dataclass_fields__]

BUSY_TIMEOUT_MS = 10_000


_CHAT_COLUMNS = (
    Chat.id,
    Chat.title,
    Chat.system_prompt,
    Chat.sampling,
    Chat.model_path,
    Chat.overflow_policy,
    Chat.created_at,
    Chat.updated_at,
)
_MODEL_FILE_COLUMNS = (
    ModelFile.id,
    ModelFile.source,
    ModelFile.added_at,
    *(getattr(ModelFile, name) for name in ModelInfo.__dataclass_fields__),
)
_PRESET_COLUMNS = (Preset.id, Preset.name, Preset.system_prompt, Preset.sampling, Preset.builtin)

_SEARCH_SQL = text(
    "SELECT m.chat_id, c.title, m.id, m.role, "
    "snippet(messages_fts, 0, :start, :end, '…', :tokens) "
    "FROM messages_fts "
    "JOIN messages AS m ON m.id = messages_fts.rowid "
    "JOIN chats AS c ON c.id = m.chat_id "
    "WHERE messages_fts MATCH :query "
    "ORDER BY rank LIMIT :limit"
)


def fts_query(raw: str) -> str | None:
    """Turn what the user typed into a safe FTS5 query: every term quoted, last one a prefix.

    Quoting makes operators (AND, NEAR, parentheses, `*`, `"`) plain text; terms with no letters
    or digits are dropped because the tokenizer would make empty phrases of them.
    """
    terms = [term for term in raw.split() if any(ch.isalnum() for ch in term)]
    if not terms:
        return None
    quoted = ['"' + term.replace('"', '""') + '"' for term in terms]
    quoted[-1] += "*"
    return " ".join(quoted)


def _chat(row: Row[Any]) -> ChatRecord:
    return ChatRecord(
        row[0], row[1], row[2], Sampling.from_dict(row[3]), row[4], row[5], row[6], row[7]
    )


def _model_file(row: Row[Any]) -> ModelFileRecord:
    data = dict(row._mapping)
    data["layer_tensor_bytes"] = tuple(data["layer_tensor_bytes"] or ())
    return ModelFileRecord(**data)


def _preset(row: Row[Any]) -> PresetRecord:
    sampling = Sampling.from_dict(row[3]) if row[3] is not None else None
    return PresetRecord(row[0], row[1], row[2], sampling, bool(row[4]))


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


class Store(MessageTree):
    """Chats, messages, model files, presets and settings in one SQLite database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = WriterLock(lock_folder(engine.url.database))
        self._write = sessionmaker(
            engine.execution_options(hearth_begin="BEGIN IMMEDIATE"), expire_on_commit=False
        )

    @classmethod
    def open(cls, db_path: Path) -> Store:
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

    # chats

    def create_chat(
        self,
        title: str = "New chat",
        system_prompt: str = "",
        sampling: Sampling | None = None,
        model_path: str | None = None,
        overflow_policy: OverflowPolicy = "truncate_oldest",
    ) -> ChatRecord:
        check(overflow_policy, OVERFLOW_POLICIES, "overflow policy")
        sampling_data = (sampling or Sampling()).to_dict()
        now = utcnow()
        # A core INSERT names only these columns (the ORM would name every one, leaf_id too),
        # so a Store can still add chats to a database a migration has not reached yet.
        statement = insert(Chat).values(
            title=title,
            system_prompt=system_prompt,
            sampling=sampling_data,
            model_path=model_path,
            overflow_policy=overflow_policy,
            created_at=now,
            updated_at=now,
        ).returning(Chat.id)
        with self._writing() as session:
            chat_id = int(session.execute(statement).scalar_one())
        return ChatRecord(
            chat_id,
            title,
            system_prompt,
            Sampling.from_dict(sampling_data),
            model_path,
            overflow_policy,
            now,
            now,
        )

    def get_chat(self, chat_id: int) -> ChatRecord | None:
        with self._reading() as conn:
            row = conn.execute(select(*_CHAT_COLUMNS).where(Chat.id == chat_id)).first()
        return _chat(row) if row else None

    def list_chats(self) -> list[ChatRecord]:
        """Most recently updated first."""
        query = select(*_CHAT_COLUMNS).order_by(Chat.updated_at.desc(), Chat.id.desc())
        with self._reading() as conn:
            return [_chat(row) for row in conn.execute(query)]

    def rename_chat(self, chat_id: int, title: str) -> bool:
        return self.update_chat(chat_id, title=title)

    def update_chat(
        self,
        chat_id: int,
        *,
        title: str | _Unset = UNSET,
        system_prompt: str | _Unset = UNSET,
        sampling: Sampling | _Unset = UNSET,
        model_path: str | None | _Unset = UNSET,
        overflow_policy: OverflowPolicy | _Unset = UNSET,
    ) -> bool:
        """Change only the fields given; returns False when the chat does not exist."""
        values: dict[str, Any] = {}
        if not isinstance(title, _Unset):
            values["title"] = title
        if not isinstance(system_prompt, _Unset):
            values["system_prompt"] = system_prompt
        if not isinstance(sampling, _Unset):
            values["sampling"] = sampling.to_dict()
        if not isinstance(model_path, _Unset):
            values["model_path"] = model_path
        if not isinstance(overflow_policy, _Unset):
            check(overflow_policy, OVERFLOW_POLICIES, "overflow policy")
            values["overflow_policy"] = overflow_policy
        if not values:
            return self.get_chat(chat_id) is not None
        return self._update(update(Chat).where(Chat.id == chat_id).values(**values))

    def touch_chat(self, chat_id: int) -> bool:
        return self._update(update(Chat).where(Chat.id == chat_id).values(updated_at=utcnow()))

    def delete_chat(self, chat_id: int) -> bool:
        """Delete a chat; its messages go with it (ON DELETE CASCADE)."""
        return self._update(delete(Chat).where(Chat.id == chat_id))

    def _update(self, statement: Any) -> bool:
        with self._writing() as session:
            return session.execute(statement).rowcount > 0

    # messages

    def search_messages(
        self, query: str, limit: int = 50, *, marks: tuple[str, str] = ("[", "]")
    ) -> list[SearchHit]:
        """Full-text search over all messages, best match first; any input is safe."""
        match = fts_query(query)
        if match is None or limit <= 0:
            return []
        params = {"query": match, "start": marks[0], "end": marks[1], "tokens": 12, "limit": limit}
        try:
            with self._reading() as conn:
                rows = conn.execute(_SEARCH_SQL, params).all()
        except OperationalError as exc:
            # fts_query should make this unreachable; a search box must never crash the app.
            if "fts5" not in str(exc).lower():
                raise
            log.warning("FTS query %r rejected: %s", match, exc)
            return []
        return [SearchHit(*row) for row in rows]

    # model files

    def add_model_file(self, info: ModelInfo, source: ModelSource = "import") -> ModelFileRecord:
        """Insert or, when the path is already known, refresh a model file's row."""
        check(source, MODEL_SOURCES, "model source")
        values = info.to_dict()
        values["layer_tensor_bytes"] = list(info.layer_tensor_bytes)
        values["source"] = source
        statement = sqlite_insert(ModelFile).values(**values, added_at=utcnow())
        statement = statement.on_conflict_do_update(
            index_elements=[ModelFile.path], set_=values
        ).returning(*_MODEL_FILE_COLUMNS)
        with self._writing() as session:
            return _model_file(session.execute(statement).one())

    def list_model_files(self) -> list[ModelFileRecord]:
        query = select(*_MODEL_FILE_COLUMNS).order_by(ModelFile.path)
        with self._reading() as conn:
            return [_model_file(row) for row in conn.execute(query)]

    def get_model_file_by_path(self, path: str | Path) -> ModelFileRecord | None:
        query = select(*_MODEL_FILE_COLUMNS).where(ModelFile.path == str(path))
        with self._reading() as conn:
            row = conn.execute(query).first()
        return _model_file(row) if row else None

    def remove_model_file(self, model_file_id: int) -> bool:
        """Forget a model file (the file on disk is left alone)."""
        return self._update(delete(ModelFile).where(ModelFile.id == model_file_id))

    # presets

    def list_presets(self) -> list[PresetRecord]:
        query = select(*_PRESET_COLUMNS).order_by(Preset.builtin.desc(), Preset.name)
        with self._reading() as conn:
            return [_preset(row) for row in conn.execute(query)]

    def upsert_preset(
        self,
        name: str,
        system_prompt: str,
        sampling: Sampling | None = None,
        builtin: bool = False,
    ) -> PresetRecord:
        values = {
            "system_prompt": system_prompt,
            "sampling": sampling.to_dict() if sampling is not None else None,
            "builtin": builtin,
        }
        statement = (
            sqlite_insert(Preset)
            .values(name=name, **values)
            .on_conflict_do_update(index_elements=[Preset.name], set_=values)
            .returning(*_PRESET_COLUMNS)
        )
        with self._writing() as session:
            return _preset(session.execute(statement).one())

    def delete_preset(self, name: str) -> bool:
        """Delete a user preset; ValueError for a built-in one, False if there is none."""
        with self._writing() as session:
            builtin = session.execute(
                select(Preset.builtin).where(Preset.name == name)
            ).scalar_one_or_none()
            if builtin is None:
                return False
            if builtin:
                raise ValueError(f"preset {name!r} is built in and cannot be deleted")
            session.execute(delete(Preset).where(Preset.name == name))
            return True

    # downloads (the engine's DownloadJournal)

    def save_download(self, record: DownloadRecord) -> None:
        values = {name: getattr(record, name) for name in DownloadRecord.__dataclass_fields__}
        values["updated_at"] = utcnow()
        statement = sqlite_insert(Download).values(**values)
        statement = statement.on_conflict_do_update(index_elements=[Download.key], set_=values)
        with self._writing() as session:
            session.execute(statement)

    def get_download(self, key: str) -> DownloadRecord | None:
        columns = [getattr(Download, name) for name in DownloadRecord.__dataclass_fields__]
        with self._reading() as conn:
            row = conn.execute(select(*columns).where(Download.key == key)).first()
        return DownloadRecord(*row) if row else None

    def list_downloads(self) -> list[DownloadRecord]:
        columns = [getattr(Download, name) for name in DownloadRecord.__dataclass_fields__]
        with self._reading() as conn:
            rows = conn.execute(select(*columns).order_by(Download.updated_at)).all()
        return [DownloadRecord(*row) for row in rows]

    def delete_download(self, key: str) -> None:
        with self._writing() as session:
            session.execute(delete(Download).where(Download.key == key))

    # memory checks (estimated vs measured memory per load)

    def add_memory_check(self, check: MemoryCheckEvent) -> MemoryCheckRecord:
        row = MemoryCheck(
            model_path=check.model_path, n_ctx=check.n_ctx, kv_type=check.kv_type,
            gpu_layers=check.gpu_layers, estimated_ram=check.estimated_ram,
            actual_ram=check.actual_ram_growth, estimated_vram=check.estimated_vram,
            actual_vram=check.actual_vram_growth, after_reply=check.after_reply,
        )
        with self._writing() as session:
            session.add(row)
            session.flush()
            return self._memory_check_record(row)

    def list_memory_checks(self, model_path: str | Path) -> list[MemoryCheckRecord]:
        """The pairs stored for ``model_path``, oldest first."""
        with self._reading() as conn:
            rows = conn.execute(
                select(*_MEMORY_CHECK_COLUMNS)
                .where(MemoryCheck.model_path == str(model_path))
                .order_by(MemoryCheck.id)
            ).all()
        return [MemoryCheckRecord(*row) for row in rows]

    @staticmethod
    def _memory_check_record(row: MemoryCheck) -> MemoryCheckRecord:
        return MemoryCheckRecord(*(getattr(row, c.key) for c in _MEMORY_CHECK_COLUMNS))

    # quantization: lineage and quality reports

    def add_lineage(
        self, output_path: str | Path, source_path: str | Path, quant_type: str,
        imatrix_path: str | Path | None = None,
    ) -> LineageRecord:
        """Record (or replace) where the model at ``output_path`` was quantized from."""
        values = {"source_path": str(source_path), "quant_type": quant_type,
                  "imatrix_path": str(imatrix_path) if imatrix_path else None,
                  "created_at": utcnow()}
        statement = (
            sqlite_insert(ModelLineage).values(output_path=str(output_path), **values)
            .on_conflict_do_update(index_elements=[ModelLineage.output_path], set_=values)
            .returning(*_LINEAGE_COLUMNS)
        )
        with self._writing() as session:
            return LineageRecord(*session.execute(statement).one())

    def list_lineage(self) -> dict[str, LineageRecord]:
        """Every recorded lineage by output path, for showing a whole library at once."""
        with self._reading() as conn:
            return {row[0]: LineageRecord(*row)
                    for row in conn.execute(select(*_LINEAGE_COLUMNS))}

    def get_lineage(self, output_path: str | Path) -> LineageRecord | None:
        query = select(*_LINEAGE_COLUMNS).where(ModelLineage.output_path == str(output_path))
        with self._reading() as conn:
            row = conn.execute(query).first()
        return LineageRecord(*row) if row else None

    def save_quality_report(self, report: QualityReportValue) -> QualityReportRecord:
        with self._writing() as session:
            header = QualityReport(source_path=report.source_path, sample=report.sample,
                                   n_ctx=report.n_ctx, n_chunks=report.n_chunks,
                                   gpu_layers=report.gpu_layers)
            session.add(header)
            session.flush()
            session.add_all(
                QualityResult(report_id=header.id, position=i, **vars(row))
                for i, row in enumerate(report.rows)
            )
            return QualityReportRecord(header.id, header.created_at, report)

    def quality_report_paths(self) -> set[str]:
        """Paths of every model some report measured, as the source or as an output."""
        query = select(QualityReport.source_path).union(select(QualityResult.path))
        with self._reading() as conn:
            return set(conn.execute(query).scalars())

    def latest_quality_report(self, model_path: str | Path) -> QualityReportRecord | None:
        """The newest report that measured ``model_path``, as the source or as an output."""
        path = str(model_path)
        in_results = select(QualityResult.report_id).where(QualityResult.path == path)
        query = (
            select(QualityReport)
            .where((QualityReport.source_path == path) | QualityReport.id.in_(in_results))
            .order_by(QualityReport.id.desc())
            .limit(1)
        )
        with self._reading() as conn:
            header = conn.execute(query).first()
            if header is None:
                return None
            rows = conn.execute(
                select(*_QUALITY_ROW_COLUMNS)
                .where(QualityResult.report_id == header.id)
                .order_by(QualityResult.position)
            ).all()
        report = QualityReportValue(
            header.source_path, header.sample, header.n_ctx, header.n_chunks,
            tuple(QualityRow(*row) for row in rows), header.gpu_layers,
        )
        return QualityReportRecord(header.id, header.created_at, report)

    # settings

    def get_setting(self, key: str, default: Any = None) -> Any:
        with self._reading() as conn:
            row = conn.execute(select(Setting.value).where(Setting.key == key)).first()
        return row[0] if row else default

    def set_setting(self, key: str, value: Any) -> None:
        """Store any JSON-serialisable value; TypeError (and nothing written) otherwise."""
        json.dumps(value)  # fail with a plain TypeError, not a wrapped SQLAlchemy error
        statement = sqlite_insert(Setting).values(key=key, value=value)
        statement = statement.on_conflict_do_update(
            index_elements=[Setting.key], set_={"value": statement.excluded.value}
        )
        with self._writing() as session:
            session.execute(statement)

    # health

    def integrity_ok(self) -> bool:
        with self._reading() as conn:
            rows: Sequence[Row[Any]] = conn.execute(text("PRAGMA integrity_check")).all()
        return [tuple(row) for row in rows] == [("ok",)]
