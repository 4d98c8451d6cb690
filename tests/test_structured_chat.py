"""Structured output in the window (issue 12): a per-chat switch and schema editor that checks
as you type, replies constrained to the schema and shown pretty-printed, all saved with the
chat (migration 0007) and exported with it."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import jsonschema
import pytest
from chat_page_support import load, send, shown_text, wait_idle
from PySide6.QtCore import Qt

from app.models.chat_export import export_json, export_markdown
from app.models.migrations import migrate_to
from app.models.store import Store

# Enums, bounded integers, a nested object and a bounded array: a random-weight model writes
# valid JSON for it only if the grammar makes it.
SCHEMA = {
    "type": "object",
    "properties": {
        "mood": {"enum": ["happy", "sad", "calm"]},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "place": {
            "type": "object",
            "properties": {"indoor": {"type": "boolean"}},
            "required": ["indoor"],
            "additionalProperties": False,
        },
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1, "maxItems": 2},
    },
    "required": ["mood", "score", "place", "tags"],
    "additionalProperties": False,
}


def _type_schema(qtbot, editor, text: str) -> None:
    """Type `text` into the schema editor as a user would, then wait for its check."""
    editor.editor.clear()
    for number, line in enumerate(text.split("\n")):
        if number:
            qtbot.keyClick(editor.editor, Qt.Key.Key_Return)
        qtbot.keyClicks(editor.editor, line)
    qtbot.waitUntil(lambda: not editor.checking, timeout=5_000)


def _chat_rows(db_path: Path) -> tuple[list[tuple], list[tuple]]:
    with sqlite3.connect(db_path) as conn:
        chats = conn.execute("SELECT id, title, system_prompt FROM chats ORDER BY id").fetchall()
        messages = conn.execute(
            "SELECT id, chat_id, role, content FROM messages ORDER BY id").fetchall()
    conn.close()
    return chats, messages


def test_an_old_database_keeps_its_chats_through_the_upgrade_and_back(tmp_path: Path) -> None:
    db_path = tmp_path / "hearth.db"
    migrate_to(db_path, "0006_model_info_json")
    with sqlite3.connect(db_path) as conn:
        for title in ("First", "Second"):
            conn.execute(
                "INSERT INTO chats (title, system_prompt, sampling, overflow_policy, created_at, "
                "updated_at) VALUES (?, 'Be kind.', '{}', 'stop', '2026-01-02 03:04:05', "
                "'2026-01-02 03:04:05')", (title,))
        for chat_id, parent, role, text in ((1, None, "user", "Hi"), (1, 1, "assistant", "Hello"),
                                            (2, None, "user", "Bye")):
            conn.execute("INSERT INTO messages (chat_id, parent_id, role, content, status, "
                         "created_at) VALUES (?, ?, ?, ?, 'complete', '2026-01-02 03:04:05')",
                         (chat_id, parent, role, text))
    conn.close()
    before = _chat_rows(db_path)

    with Store.open(db_path) as store:  # upgrades to head
        chats = store.list_chats()
        assert {c.title for c in chats} == {"First", "Second"}
        assert all(not c.structured_output and c.response_schema is None for c in chats)
        assert [m.content for m in store.list_messages(1)] == ["Hi", "Hello"]
        store.update_chat(1, response_schema='{"type": "object"}', structured_output=True)
        assert store.get_chat(1).structured_output
    assert _chat_rows(db_path) == before

    # Going back drops only the new columns: no chat or message goes with them.
    migrate_to(db_path, "0006_model_info_json", down=True)
    assert _chat_rows(db_path) == before
    with sqlite3.connect(db_path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(chats)")}
    conn.close()
    assert not {"response_schema", "structured_output"} & columns


def test_the_schema_and_switch_are_saved_and_exported_with_the_chat(hearth_store) -> None:
    schema_text = json.dumps(SCHEMA, indent=2)
    chat = hearth_store.create_chat("Moods", response_schema=schema_text, structured_output=True)
    assert hearth_store.get_chat(chat.id) == chat
    hearth_store.add_message(chat.id, "user", "How are you?")
    data = json.loads(export_json(hearth_store.get_chat(chat.id), []))
    assert data["structured_output"] is True and json.loads(data["response_schema"]) == SCHEMA
    markdown = export_markdown(hearth_store.get_chat(chat.id), [])
    assert "Structured output: on" in markdown
    assert "## Response schema\n\n```json\n" + schema_text + "\n```" in markdown

    hearth_store.update_chat(chat.id, structured_output=False)
    off = hearth_store.get_chat(chat.id)
    assert not off.structured_output and off.response_schema == schema_text
    assert "Structured output" not in export_markdown(off, [])


def test_the_editor_says_what_is_wrong_and_only_a_usable_schema_switches_on(
    qtbot, make_page, hearth_store
) -> None:
    page = make_page()
    chat_id = page.new_chat()
    editor = page.settings_panel.schema_editor
    assert not editor.switch.isEnabled()  # nothing written yet

    _type_schema(qtbot, editor, '{\n  "type": "object",\n  "properties": {"a": }\n}')
    assert editor.message.text().startswith("JSON error at line 3, column")
    assert not editor.switch.isEnabled()
    assert editor.message.textFormat() == Qt.TextFormat.PlainText

    _type_schema(qtbot, editor, '{"type": "strng"}')
    assert editor.message.text().startswith("Not a valid JSON Schema at type:")
    assert not editor.switch.isEnabled()

    _type_schema(qtbot, editor, '{"type": "object", "not": {"required": ["x"]}}')
    assert "cannot enforce" in editor.message.text() and "not" in editor.message.text()
    assert not editor.switch.isEnabled()

    _type_schema(qtbot, editor, json.dumps(SCHEMA))
    assert editor.check.ok and editor.message.text().startswith("Valid schema")
    assert editor.switch.isEnabled()
    qtbot.mouseClick(editor.switch, Qt.MouseButton.LeftButton)
    chat = hearth_store.get_chat(chat_id)
    assert chat.structured_output and json.loads(chat.response_schema) == SCHEMA

    # Typing a broken schema keeps the switch on (it can still be turned off), and saves it.
    editor.editor.moveCursor(editor.editor.textCursor().MoveOperation.End)
    qtbot.keyClicks(editor.editor, ",")
    qtbot.waitUntil(lambda: not editor.checking, timeout=5_000)
    assert editor.message.text().startswith("JSON error") and editor.switch.isEnabled()
    qtbot.waitUntil(lambda: hearth_store.get_chat(chat_id).response_schema.endswith(","))
    qtbot.mouseClick(editor.switch, Qt.MouseButton.LeftButton)
    assert not hearth_store.get_chat(chat_id).structured_output
    assert not editor.switch.isEnabled()


def test_a_reply_follows_the_schema_and_is_shown_pretty_printed(
    qtbot, bridge, make_page, hearth_store, tiny_chat_model
) -> None:
    page = make_page()
    load(qtbot, bridge, page, tiny_chat_model)
    chat_id = page.new_chat()
    panel = page.settings_panel
    panel.temperature.setValue(1.0)
    panel.max_tokens.setValue(200)
    editor = panel.schema_editor
    _type_schema(qtbot, editor, json.dumps(SCHEMA))
    qtbot.mouseClick(editor.switch, Qt.MouseButton.LeftButton)

    for question in ("How do you feel?", "And now?"):
        send(qtbot, page, question)
        wait_idle(qtbot, page)
        reply = hearth_store.list_messages(chat_id)[-1]
        assert reply.role == "assistant" and reply.status == "complete", reply.error
        value = json.loads(reply.content)
        jsonschema.validate(value, SCHEMA)
        row = page.messages.rowCount() - 1
        # A code block: its language label line, then the indented JSON.
        assert shown_text(page, row).startswith("json\n" + json.dumps(value, indent=2))

    # Switched off, the replies are shown as the model wrote them, not indented.
    qtbot.mouseClick(editor.switch, Qt.MouseButton.LeftButton)
    assert not hearth_store.get_chat(chat_id).structured_output
    assert not shown_text(page, page.messages.rowCount() - 1).startswith(
        json.dumps(value, indent=2))


def test_an_unsupported_schema_saved_on_fails_the_reply_with_the_reason(
    qtbot, bridge, make_page, hearth_store, tiny_chat_model
) -> None:
    # A chat imported or edited elsewhere may hold an unusable schema with the switch on.
    chat = hearth_store.create_chat("Odd", response_schema='{"type": "object", "not": {}}',
                                    structured_output=True)
    page = make_page()
    load(qtbot, bridge, page, tiny_chat_model)
    page.open_chat(chat.id)
    send(qtbot, page, "Hello")
    wait_idle(qtbot, page)
    reply = hearth_store.list_messages(chat.id)[-1]
    assert reply.status == "failed" and reply.error.startswith("Structured output: ")
    assert reply.error.endswith(": not.")  # names the keyword it cannot honour
    assert reply.error in shown_text(page, page.messages.rowCount() - 1)

    hearth_store.update_chat(chat.id, response_schema="{oops")
    page.settings_panel.set_chat(hearth_store.get_chat(chat.id))
    send(qtbot, page, "Again")
    wait_idle(qtbot, page)
    reply = hearth_store.list_messages(chat.id)[-1]
    assert reply.status == "failed" and "JSON error at line 1" in reply.error


def test_the_setting_survives_closing_and_reopening_the_window(qtbot, make_main_window) -> None:
    first = make_main_window()
    chat_id = first.chat_page.new_chat()
    store = first.context.store
    store.add_message(chat_id, "user", "Give me JSON")
    store.add_message(chat_id, "assistant", '{"mood": "calm", "tags": ["a"]}')
    editor = first.chat_page.settings_panel.schema_editor
    _type_schema(qtbot, editor, json.dumps(SCHEMA))
    qtbot.mouseClick(editor.switch, Qt.MouseButton.LeftButton)
    first.close()

    second = make_main_window()
    page = second.chat_page
    assert page.current_chat_id() == chat_id
    editor = page.settings_panel.schema_editor
    assert editor.is_on() and json.loads(editor.schema_text()) == SCHEMA
    qtbot.waitUntil(lambda: not editor.checking and editor.check.ok, timeout=5_000)
    shown = shown_text(page, page.messages.rowCount() - 1)
    assert shown.startswith('json\n{\n  "mood": "calm",\n  "tags": [\n    "a"\n  ]\n}')


@pytest.mark.parametrize("text", ['{"a": 1', "[1, 2", "not json at all", '"just a string"',
                                  "[" * 35 + "]" * 35])  # too deep to indent
def test_a_reply_that_is_not_a_json_object_is_shown_as_it_is(qtbot, make_page, hearth_store,
                                                            text) -> None:
    chat = hearth_store.create_chat("Cut", response_schema='{"type": "object"}',
                                    structured_output=True)
    hearth_store.add_message(chat.id, "user", "Go")
    hearth_store.add_message(chat.id, "assistant", text, status="partial")
    page = make_page()
    page.open_chat(chat.id)
    assert shown_text(page, 1).startswith(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("[" * 50_000, "nested too deeply"),
    ('{"type": "string", "x": "' + "a" * 200_000 + '"}', "too long"),
    ('{"type": "array", "items": {"type": "integer"}, "maxItems": 1000000}', "maxItems"),
    ("null", "must be a JSON object"),
])
def test_hostile_schema_text_gets_a_quick_plain_answer(text: str, expected: str) -> None:
    from app.services.response_schema import check_schema_text

    started = time.perf_counter()
    check = check_schema_text(text)
    assert not check.ok and expected in check.message
    assert time.perf_counter() - started < 2.0
