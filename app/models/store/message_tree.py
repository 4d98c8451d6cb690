"""The Store's messages: each chat's messages form a tree, and the chat remembers its branch.

Regenerate and edit-and-resend never delete: the new reply (or message) is a sibling of the old
one, with the same parent, and `chats.leaf_id` names the last message of the branch on screen.
That branch, the path from the leaf up to the root, is what the window shows, what the model is
sent and what an export writes. A child is always inserted after its parent, so ids grow along
every path: "ORDER BY id" is path order, and the recursive queries below only ever step to a
smaller id going up (or a larger one going down), so even a damaged file cannot make them loop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CTE,
    Integer,
    Select,
    String,
    delete,
    func,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session

from app.engine.types import GenerationStats, Role
from app.models.document_records import ReplySources
from app.models.image_records import StoredImage
from app.models.records import MESSAGE_STATUSES, ROLES, MessageRecord, MessageStatus
from app.models.store.image_files import ImageFiles
from app.models.store_values import UNSET, _Unset, check
from app.models.tables import Chat, Message, utcnow

# Stats and timestamps come back as raw text and are decoded in message_record: SQLAlchemy's
# per-row type processing would triple the time to load a 10,000-message chat.
MESSAGE_COLUMNS = (
    Message.id,
    Message.chat_id,
    Message.role,
    Message.content,
    Message.status,
    Message.error,
    type_coerce(Message.created_at, String),
    type_coerce(Message.stats, String),
    Message.parent_id,
    type_coerce(Message.tool, String),
    type_coerce(Message.sources, String),
    type_coerce(Message.images, String),
    Message.reasoning,
)


def message_record(row: Row[Any]) -> MessageRecord:
    created_at = datetime.fromisoformat(row[6]).replace(tzinfo=UTC)
    return MessageRecord(row[0], row[1], row[2], row[3], row[4], row[5], created_at, row[7], row[8],
                         row[9], row[10], row[11], row[12])


def _path_up(leaf: int, stop: int | None = None) -> Select[Any]:
    """Ids from `leaf` up to the root (or up to `stop`, included)."""
    path = select(literal(leaf, Integer).label("id")).cte("path", recursive=True)
    step = select(Message.parent_id).where(Message.id == path.c.id,
                                           Message.parent_id < path.c.id)
    if stop is not None:
        step = step.where(path.c.id != stop)
    path = path.union_all(step)
    return select(path.c.id)


def _subtree(chat_id: int, root: int) -> CTE:
    """A message and everything that follows it, on every branch."""
    sub = select(literal(root, Integer).label("id")).cte("subtree", recursive=True)
    return sub.union_all(
        select(Message.id).where(Message.chat_id == chat_id, Message.parent_id == sub.c.id,
                                 Message.id > sub.c.id)
    )


def _newest_under(conn: Connection | Session, chat_id: int, message_id: int) -> int:
    """The newest message after `message_id` on any branch: the leaf of its newest branch."""
    sub = _subtree(chat_id, message_id)
    return int(conn.execute(select(func.max(sub.c.id))).scalar_one())


def _forks(chat_id: int) -> Select[Any]:
    """The parents (0 for "none") with more than one child: where versions are."""
    return (
        select(func.coalesce(Message.parent_id, 0))
        .where(Message.chat_id == chat_id)
        .group_by(Message.parent_id)
        .having(func.count() > 1)
    )


def _leaf(conn: Connection | Session, chat_id: int) -> int | None:
    """The last message of the chat's branch on screen (the newest one if none is recorded)."""
    leaf = conn.execute(select(Chat.leaf_id).where(Chat.id == chat_id)).scalar()
    if leaf is not None and conn.execute(
        select(Message.id).where(Message.id == leaf, Message.chat_id == chat_id)
    ).first():
        return int(leaf)
    newest = conn.execute(select(func.max(Message.id)).where(Message.chat_id == chat_id)).scalar()
    return int(newest) if newest is not None else None


def _same_parent(parent_id: int | None) -> Any:
    return Message.parent_id.is_(None) if parent_id is None else Message.parent_id == parent_id


class MessageTree(ImageFiles):
    """Store mixin: each chat's messages, as a tree with the branch on screen."""

    def add_message(
        self,
        chat_id: int,
        role: Role,
        content: str,
        status: MessageStatus = "complete",
        stats: GenerationStats | None = None,
        error: str | None = None,
        *,
        parent_id: int | None | _Unset = UNSET,
        tool: dict[str, Any] | None = None,
        images: Sequence[StoredImage] = (),
    ) -> MessageRecord:
        """Add a message after `parent_id` (default: at the end of the branch on screen), make
        it the end of the branch shown, and bump the chat's updated_at. ``tool``: a "tool"
        turn's call (see `ToolTurn.to_dict`) or an assistant turn's calls (`calls_data`).
        ``images``: a user message's attached images, saved first with `save_image`.

        LookupError if the chat is gone or the parent is not one of its messages.
        """
        check(role, ROLES, "role")
        check(status, MESSAGE_STATUSES, "message status")
        now = utcnow()
        with self._writing() as session:
            # One query for "does the chat exist" and "is its recorded leaf still there".
            found = session.execute(
                select(Chat.id, Message.id)
                .outerjoin(Message, (Message.id == Chat.leaf_id) & (Message.chat_id == Chat.id))
                .where(Chat.id == chat_id)
            ).first()
            if found is None:
                raise LookupError(f"chat {chat_id} does not exist")
            if isinstance(parent_id, _Unset):
                parent = found[1] if found[1] is not None else _leaf(session, chat_id)
            else:
                parent = parent_id
                if parent is not None and session.execute(
                    select(Message.chat_id).where(Message.id == parent)
                ).scalar() != chat_id:
                    raise LookupError(f"message {parent} is not in chat {chat_id}")
            message = Message(
                chat_id=chat_id,
                parent_id=parent,
                role=role,
                content=content,
                status=status,
                stats=stats.to_dict() if stats is not None else None,
                error=error,
                tool=tool,
                images=[image.to_dict() for image in images] or None,
                created_at=now,
                # Claimed before the row exists, so no other process sees it without a live lock.
                writer=self._writer.claim() if status == "streaming" else None,
            )
            session.add(message)
            session.flush()
            message_id = message.id
            session.execute(
                update(Chat).where(Chat.id == chat_id).values(updated_at=now, leaf_id=message_id)
            )
        stats_json = json.dumps(stats.to_dict()) if stats is not None else None
        return MessageRecord(
            message_id, chat_id, role, content, status, error, now, stats_json, parent,
            json.dumps(tool) if tool is not None else None, None,
            json.dumps([image.to_dict() for image in images]) if images else None,
        )

    def update_message(
        self,
        message_id: int,
        *,
        content: str | _Unset = UNSET,
        status: MessageStatus | _Unset = UNSET,
        stats: GenerationStats | None | _Unset = UNSET,
        error: str | None | _Unset = UNSET,
        tool: dict[str, Any] | None | _Unset = UNSET,
        sources: ReplySources | None | _Unset = UNSET,
        reasoning: str | None | _Unset = UNSET,
    ) -> bool:
        """Change only the fields given; returns False when the message no longer exists.
        ``sources``: what a reply made with documents was given (None clears it)."""
        values: dict[str, Any] = {}
        if not isinstance(content, _Unset):
            values["content"] = content
        if not isinstance(reasoning, _Unset):
            values["reasoning"] = reasoning or None
        if not isinstance(tool, _Unset):
            values["tool"] = tool
        if not isinstance(sources, _Unset):
            values["sources"] = sources.to_dict() if sources is not None else None
        return self._change_message(message_id, values, status, stats, error)

    def save_reply(
        self,
        message_id: int,
        piece: str,
        *,
        status: MessageStatus | _Unset = UNSET,
        stats: GenerationStats | None | _Unset = UNSET,
        error: str | None | _Unset = UNSET,
    ) -> bool:
        """Append `piece` to a reply (and set the fields given); False if the reply is gone.

        The new text is appended in SQL, so a save costs the piece, not the whole reply.
        """
        values: dict[str, Any] = {"content": Message.content + piece} if piece else {}
        return self._change_message(message_id, values, status, stats, error)

    def _change_message(
        self,
        message_id: int,
        values: dict[str, Any],
        status: MessageStatus | _Unset,
        stats: GenerationStats | None | _Unset,
        error: str | None | _Unset,
    ) -> bool:
        if not isinstance(status, _Unset):
            check(status, MESSAGE_STATUSES, "message status")
            values["status"] = status
        if not isinstance(stats, _Unset):
            values["stats"] = stats.to_dict() if stats is not None else None
        if not isinstance(error, _Unset):
            values["error"] = error
        if not values:
            return self.get_message(message_id) is not None
        return self._update(update(Message).where(Message.id == message_id).values(**values))

    def get_message(self, message_id: int) -> MessageRecord | None:
        query = select(*MESSAGE_COLUMNS).where(Message.id == message_id)
        with self._reading() as conn:
            row = conn.execute(query).first()
        return message_record(row) if row else None

    def list_messages(self, chat_id: int) -> list[MessageRecord]:
        """The branch on screen, oldest first: what the window shows and the model is sent."""
        query = select(*MESSAGE_COLUMNS).order_by(Message.id)
        with self._reading() as conn:
            if conn.execute(_forks(chat_id).limit(1)).first() is None:
                # No message has versions: the chat is one branch, read without walking it.
                query = query.where(Message.chat_id == chat_id)
            else:
                leaf = _leaf(conn, chat_id)
                if leaf is None:
                    return []
                query = query.where(Message.id.in_(_path_up(leaf)))
            return [message_record(row) for row in conn.execute(query)]

    def message_versions(self, chat_id: int) -> dict[int, tuple[int, ...]]:
        """For each message that has other versions: the ids of all of them, oldest first.

        Versions are siblings: replies regenerated for the same message, or edits of a message.
        """
        groups: dict[int, list[int]] = {}
        with self._reading() as conn:
            forks = set(conn.execute(_forks(chat_id)).scalars())
            if not forks:
                return {}  # the usual case: nothing was regenerated or edited
            parents = Message.parent_id.in_(forks - {0})
            query = (
                select(Message.id, Message.parent_id)
                .where(Message.chat_id == chat_id,
                       or_(parents, Message.parent_id.is_(None)) if 0 in forks else parents)
                .order_by(Message.id)
            )
            for message_id, parent_id in conn.execute(query):
                groups.setdefault(parent_id or 0, []).append(message_id)
        return {m: tuple(ids) for ids in groups.values() for m in ids}

    def show_version(self, chat_id: int, message_id: int) -> list[MessageRecord]:
        """Put `message_id` on the branch on screen, continuing with its newest branch below.

        Returns that message and the ones after it on the new branch ([] if it is not in the
        chat); the messages before it are unchanged.
        """
        with self._writing() as session:
            if session.execute(
                select(Message.chat_id).where(Message.id == message_id)
            ).scalar() != chat_id:
                return []
            leaf = _newest_under(session, chat_id, message_id)
            session.execute(update(Chat).where(Chat.id == chat_id).values(leaf_id=leaf))
            rows = session.execute(
                select(*MESSAGE_COLUMNS)
                .where(Message.id.in_(_path_up(leaf, stop=message_id)))
                .order_by(Message.id)
            ).all()
        return [message_record(row) for row in rows]

    def delete_version(self, chat_id: int, message_id: int) -> int | None:
        """Delete one version of a message with everything that follows it.

        Returns the version that now shows in its place when it was on screen (the one before
        it, else the next), or None. LookupError if there is no such message in the chat;
        ValueError if it is the only version (deleting it would not leave an alternative).
        """
        with self._writing() as session:
            row = session.execute(
                select(Message.parent_id).where(Message.id == message_id,
                                                Message.chat_id == chat_id)
            ).first()
            if row is None:
                raise LookupError(f"message {message_id} is not in chat {chat_id}")
            siblings = list(session.execute(
                select(Message.id)
                .where(Message.chat_id == chat_id, _same_parent(row[0]), Message.id != message_id)
                .order_by(Message.id)
            ).scalars())
            if not siblings:
                raise ValueError("the only version of a message cannot be deleted")
            leaf = _leaf(session, chat_id)
            doomed = _subtree(chat_id, message_id)
            on_screen = session.execute(select(doomed.c.id).where(doomed.c.id == leaf)).first()
            files = self._image_files(session, Message.id.in_(select(doomed.c.id)))
            session.execute(delete(Message).where(Message.id.in_(select(doomed.c.id))))
            files = self._unreferenced(session, files)
            shown = None
            if on_screen is not None:
                earlier = [s for s in siblings if s < message_id]
                shown = earlier[-1] if earlier else siblings[0]
                session.execute(update(Chat).where(Chat.id == chat_id)
                                .values(leaf_id=_newest_under(session, chat_id, shown)))
        self._remove_files(files)
        return shown

    def count_messages(self, chat_id: int) -> int:
        """Every message of the chat, on every branch."""
        query = select(func.count()).select_from(Message).where(Message.chat_id == chat_id)
        with self._reading() as conn:
            return int(conn.execute(query).scalar_one())

    def delete_messages_from(self, chat_id: int, message_id: int) -> int:
        """Delete a message and every later one in its chat, on every branch."""
        doomed = (Message.chat_id == chat_id) & (Message.id >= message_id)
        with self._writing() as session:
            files = self._image_files(session, doomed)
            count = int(session.execute(delete(Message).where(doomed)).rowcount)
            files = self._unreferenced(session, files)
        self._remove_files(files)
        return count

    def mark_interrupted(self) -> int:
        """Replies left "streaming" by a process that is gone become "partial"; returns how many.

        A reply another live process (a `hearth chat`, a second window) is still streaming keeps
        its status: its writer's lock is still held (see app.models.writer_lock).
        """
        with self._writing() as session:
            writers = set(session.execute(
                select(Message.writer).where(Message.status == "streaming").distinct()
            ).scalars())
            gone = [writer for writer in writers if not self._writer.is_alive(writer)]
            if not gone:
                return 0
            named = Message.writer.in_([writer for writer in gone if writer is not None])
            condition = or_(named, Message.writer.is_(None)) if None in gone else named
            statement = (
                update(Message)
                .where(Message.status == "streaming", condition)
                .values(status="partial")
            )
            return int(session.execute(statement).rowcount)
