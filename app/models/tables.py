"""SQLAlchemy 2 ORM tables. The schema itself is created by Alembic migrations, never create_all."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (SQLite has no time zones), read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    pass


class Chat(Base):
    __tablename__ = "chats"
    # AUTOINCREMENT: ids of deleted chats are never reused, so a stale id held by a UI cannot
    # silently point at a different chat.
    __table_args__ = (Index("ix_chats_updated_at", "updated_at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="New chat")
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    sampling: Mapped[dict[str, Any]] = mapped_column(JSON)
    model_path: Mapped[str | None] = mapped_column(Text)
    overflow_policy: Mapped[str] = mapped_column(
        String(32), default="truncate_oldest", server_default="truncate_oldest"
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # The last message of the branch on screen (see app.models.store.message_tree); no foreign
    # key, a stale or NULL value means "the newest message".
    leaf_id: Mapped[int | None] = mapped_column(Integer)
    # The JSON schema text replies follow when structured_output is on (migration 0007).
    response_schema: Mapped[str | None] = mapped_column(Text)
    structured_output: Mapped[bool] = mapped_column(Boolean, default=False,
                                                    server_default=text("0"))
    # The per-chat "Tools" switch (migration 0008).
    tools_enabled: Mapped[bool] = mapped_column(Boolean, default=False,
                                                server_default=text("0"))


class Message(Base):
    __tablename__ = "messages"
    # AUTOINCREMENT matters here: a ReplyWriter still flushing into a message deleted by
    # regenerate must never land in a newer message that reused its id.
    __table_args__ = (
        Index("ix_messages_chat_id_id", "chat_id", "id"),
        # Small partial index so startup crash recovery does not scan every message.
        Index("ix_messages_streaming", "status", sqlite_where=text("status = 'streaming'")),
        Index("ix_messages_chat_id_parent_id", "chat_id", "parent_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    # The message this one follows; a new version of a message is a sibling (same parent).
    # No foreign key: see migration 0005.
    parent_id: Mapped[int | None] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="complete")
    error: Mapped[str | None] = mapped_column(Text)
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    writer: Mapped[str | None] = mapped_column(String(32))  # the process streaming this reply
    # Tool calls of an assistant turn, or the call a "tool" turn answers (migration 0008).
    tool: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    # A reply made with documents: its mode sentence and citations (migration 0010).
    sources: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    # A user message's attached images, files in the images folder (migration 0011).
    images: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    # A reply's reasoning, split off its answer when it ended (migration 0012).
    reasoning: Mapped[str | None] = mapped_column(Text)


class ModelFile(Base):
    """A GGUF file in the library. Its header values (app.engine.types.ModelInfo, all but the
    path) are one JSON value: columns are only for what queries look up."""

    __tablename__ = "model_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    source: Mapped[str] = mapped_column(String(16), default="import")
    info: Mapped[dict[str, Any]] = mapped_column(JSON)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Preset(Base):
    __tablename__ = "presets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    sampling: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)


class Setting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class Download(Base):
    """A Hub file being downloaded; the row goes when the file is verified and in place."""

    __tablename__ = "downloads"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    repo_id: Mapped[str] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(Text)
    revision: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    dest: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class MemoryCheck(Base):
    """Estimated vs measured memory of one model load (see
    app.engine.inference.events.MemoryCheck)."""

    __tablename__ = "memory_checks"
    __table_args__ = (Index("ix_memory_checks_model_path", "model_path", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    n_ctx: Mapped[int] = mapped_column(Integer)
    kv_type: Mapped[str] = mapped_column(String(16))
    gpu_layers: Mapped[int] = mapped_column(Integer)
    estimated_ram: Mapped[int] = mapped_column(BigInteger)
    actual_ram: Mapped[int] = mapped_column(BigInteger)
    estimated_vram: Mapped[int | None] = mapped_column(BigInteger)
    actual_vram: Mapped[int | None] = mapped_column(BigInteger)
    after_reply: Mapped[bool] = mapped_column(Boolean, default=False)


class ModelLineage(Base):
    """Where a quantized model came from: its source file and the type it was quantized to."""

    __tablename__ = "model_lineage"

    output_path: Mapped[str] = mapped_column(Text, primary_key=True)
    source_path: Mapped[str] = mapped_column(Text, index=True)
    quant_type: Mapped[str] = mapped_column(String(16))
    imatrix_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class QualityReport(Base):
    """One quality report: a source model and its quantizations measured on one sample."""

    __tablename__ = "quality_reports"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    source_path: Mapped[str] = mapped_column(Text, index=True)
    sample: Mapped[str] = mapped_column(Text)
    n_ctx: Mapped[int] = mapped_column(Integer)
    n_chunks: Mapped[int] = mapped_column(Integer)
    gpu_layers: Mapped[int] = mapped_column(Integer, default=0)


class QualityResult(Base):
    """One model's row in a quality report (see app.engine.quantize.quality.QualityRow)."""

    __tablename__ = "quality_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(
        ForeignKey("quality_reports.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text, index=True)
    file_type: Mapped[str] = mapped_column(String(32))
    file_size: Mapped[int] = mapped_column(BigInteger)
    bits_per_weight: Mapped[float] = mapped_column(Float)
    perplexity: Mapped[float | None] = mapped_column(Float)
    ppl_stderr: Mapped[float | None] = mapped_column(Float)
    prompt_tps: Mapped[float | None] = mapped_column(Float)
    gen_tps: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
