"""The Store's chats: create, list, change and delete them, and search their messages."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import OperationalError

from app.engine.types import Sampling
from app.models.records import OVERFLOW_POLICIES, ChatRecord, OverflowPolicy, SearchHit
from app.models.store.image_files import ImageFiles
from app.models.store_values import UNSET, _Unset, check
from app.models.tables import Chat, Message, utcnow

log = logging.getLogger(__name__)

_CHAT_COLUMNS = (
    Chat.id,
    Chat.title,
    Chat.system_prompt,
    Chat.sampling,
    Chat.model_path,
    Chat.overflow_policy,
    Chat.created_at,
    Chat.updated_at,
    Chat.response_schema,
    Chat.structured_output,
    Chat.tools_enabled,
)

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
        row[0], row[1], row[2], Sampling.from_dict(row[3]), row[4], row[5], row[6], row[7],
        row[8], bool(row[9]), bool(row[10]),
    )


class ChatStore(ImageFiles):
    """Store mixin: chats and the full-text search over their messages."""

    def create_chat(
        self,
        title: str = "New chat",
        system_prompt: str = "",
        sampling: Sampling | None = None,
        model_path: str | None = None,
        overflow_policy: OverflowPolicy = "truncate_oldest",
        *,
        response_schema: str | None = None,
        structured_output: bool = False,
    ) -> ChatRecord:
        check(overflow_policy, OVERFLOW_POLICIES, "overflow policy")
        sampling_data = (sampling or Sampling()).to_dict()
        now = utcnow()
        structured: dict[str, Any] = {}
        if response_schema is not None or structured_output:
            structured = {"response_schema": response_schema,
                          "structured_output": structured_output}
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
            **structured,
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
            response_schema,
            structured_output,
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
        response_schema: str | None | _Unset = UNSET,
        structured_output: bool | _Unset = UNSET,
        tools_enabled: bool | _Unset = UNSET,
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
        if not isinstance(response_schema, _Unset):
            values["response_schema"] = response_schema
        if not isinstance(structured_output, _Unset):
            values["structured_output"] = bool(structured_output)
        if not isinstance(tools_enabled, _Unset):
            values["tools_enabled"] = bool(tools_enabled)
        if not values:
            return self.get_chat(chat_id) is not None
        return self._update(update(Chat).where(Chat.id == chat_id).values(**values))

    def touch_chat(self, chat_id: int) -> bool:
        return self._update(update(Chat).where(Chat.id == chat_id).values(updated_at=utcnow()))

    def delete_chat(self, chat_id: int) -> bool:
        """Delete a chat; its messages go with it (ON DELETE CASCADE), and then the image
        files no other message names."""
        with self._writing() as session:
            files = self._image_files(session, Message.chat_id == chat_id)
            deleted = session.execute(delete(Chat).where(Chat.id == chat_id)).rowcount > 0
            files = self._unreferenced(session, files)
        self._remove_files(files)
        return deleted

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
