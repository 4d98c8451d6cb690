"""Tools in the window (issue 12): the per-chat switch, approval of every call, call and result
blocks saved and exported, the agent loop with its step cap and Stop, and a hostile MCP server.

The tiny model has random weights and never calls a tool by itself, so a test names the tool a
step must call (`controller.tool_choice`): that reply is grammar-constrained to a valid call of
it, the real path "required" and named choices take. Other steps are "auto".
"""

from __future__ import annotations

import json
import sqlite3
import sys
from datetime import datetime
from pathlib import Path

import psutil
import pytest
from chat_page_support import load, send, wait_idle
from PySide6.QtCore import Qt

from app.engine.serving.chat_tools import ReplyReader
from app.engine.types import ToolCall
from app.models.chat_export import export_json, export_markdown
from app.models.migrations import migrate_to
from app.models.records import ToolTurn, calls_data
from app.models.store import Store
from app.services.chat_session import NOT_RUN_TEXT, history_for_model
from app.services.tool_loop import DENIED_TEXT, MAX_STEPS_KEY
from app.services.tools import ToolPermissions
from app.testing.tiny_gguf import CHATML_TEMPLATE, build_tiny_model

SERVERS = Path(__file__).parent / "mcp_servers"
MARKUP = ("<tool_call>", "</tool_call>", '{"name"', "[TOOL_CALLS]", "<|python_tag|>")


@pytest.fixture(scope="module")
def tools_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny ChatML model with room for the tools' descriptions."""
    return build_tiny_model(tmp_path_factory.mktemp("tools") / "tiny-chatml-8k.gguf",
                            dtype="f16", chat_template=CHATML_TEMPLATE, n_ctx_train=8192,
                            name="tiny-chatml-8k")


@pytest.fixture
def tools_page(qtbot, bridge, make_page, hearth_store, tools_model):
    """A Chat page with the model loaded and a new chat whose Tools switch is on."""
    page = make_page()
    load(qtbot, bridge, page, tools_model, n_ctx=8192)
    page.new_chat()
    panel = page.settings_panel
    panel.temperature.setValue(1.0)
    panel.max_tokens.setValue(300)  # room for a call: the tiny tokenizer spends a token a byte
    panel.seed.setValue(7)  # the same reply every run
    qtbot.mouseClick(panel.tools_panel.switch, Qt.MouseButton.LeftButton)
    assert hearth_store.get_chat(page.current_chat_id()).tools_enabled
    yield page
    page.shutdown()


def _choose(page, *names: str) -> None:
    """Step n calls names[n-1]; later steps are "auto"."""
    page.controller.tool_choice = lambda step: names[step - 1] if step <= len(names) else "auto"


def _wait_approval(qtbot, page, name: str) -> None:
    qtbot.waitUntil(lambda: page.approval_panel.isVisible() or not page.controller.busy,
                    timeout=60_000)
    assert page.approval_panel.isVisible(), page.status_line.notice_label.text()
    assert name in page.approval_panel.title.text()


def _messages(store, page):
    return store.list_messages(page.current_chat_id())


def _row_summary(page, row: int) -> str:
    index = page.messages.index(row, 0)
    delegate = page.view.delegate
    return delegate.header_text(index) + "\n" + delegate._rendered(
        index, delegate._content_width()).thinking_label


def test_an_approved_call_runs_and_its_block_is_shown_saved_reopened_and_exported(
        qtbot, tools_page, hearth_store, tmp_path) -> None:
    page = tools_page
    _choose(page, "current_datetime")
    send(qtbot, page, "What time is it?")
    _wait_approval(qtbot, page, "current_datetime")
    panel = page.approval_panel
    assert panel.source.text() == "Source: built-in"
    assert panel.description.text().startswith("Description (Hearth's built-in tool): ")
    assert page.tool_step.text() == "Tool step 1 of 10" and page.tool_step.isVisible()
    assert page.controller.busy
    qtbot.mouseClick(panel.allow_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, page)
    assert not page.tool_step.isVisible() and not panel.isVisible()

    user, called, result, answer = _messages(hearth_store, page)
    assert (user.role, called.role, result.role, answer.role) == (
        "user", "assistant", "tool", "assistant")
    assert [c.name for c in called.tool_calls] == ["current_datetime"]
    turn = result.tool_turn
    assert turn.decision == "allowed" and turn.source == "builtin" and not turn.is_error
    assert str(datetime.now().year) in result.content
    assert turn.call_id == called.tool_calls[0].id
    # The model's next turn saw the result, tied to its call.
    history = history_for_model("", [user, called, result])
    assert history[-1].role == "tool" and history[-1].tool_call_id == turn.call_id
    assert history[-2].tool_calls == called.tool_calls
    # The visible reply never shows call markup.
    for row in range(page.messages.rowCount()):
        shown = page.view.delegate.document_for(page.messages.index(row, 0)).toPlainText()
        assert not any(marker in shown for marker in MARKUP), shown
    assert called.content == ""

    # Collapsed: one line "tool(args…) → result…"; expanded: the whole result as plain text.
    summary = _row_summary(page, 2)
    assert "Tool · current_datetime · built-in" in summary
    assert "▸ current_datetime() → " + result.content[:20] in summary
    page.view.delegate.toggle_thinking(page.messages.index(2, 0))
    details = page.view.delegate.thinking_for(page.messages.index(2, 0)).toPlainText()
    assert "Arguments" in details and result.content in details
    assert "from built-in, untrusted" in details
    page.view.delegate.toggle_thinking(page.messages.index(2, 0))

    # Reopened, the chat shows the same blocks.
    chat_id = page.current_chat_id()
    page.controller.set_chat(None)
    page.controller.set_chat(chat_id)
    assert page.messages.rowCount() == 4
    assert "▸ current_datetime() → " in _row_summary(page, 2)

    chat = hearth_store.get_chat(chat_id)
    markdown = export_markdown(chat, page.messages.records())
    assert "Called tool `current_datetime`" in markdown
    assert "## Tool result: `current_datetime` (built-in, allowed once)" in markdown
    assert result.content in markdown
    data = json.loads(export_json(chat, page.messages.records()))
    assert data["tools_enabled"] is True
    assert data["messages"][1]["tool_calls"][0]["name"] == "current_datetime"
    assert data["messages"][2]["tool"]["decision"] == "allowed"


def test_a_denied_call_never_runs_and_the_model_is_told(qtbot, tools_page, hearth_store) -> None:
    page = tools_page
    _choose(page, "current_datetime")
    send(qtbot, page, "What time is it?")
    _wait_approval(qtbot, page, "current_datetime")
    qtbot.mouseClick(page.approval_panel.deny_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, page)
    user, called, result, answer = _messages(hearth_store, page)
    assert result.tool_turn.decision == "denied" and result.content == DENIED_TEXT
    assert str(datetime.now().year) not in result.content
    assert answer.role == "assistant"  # the model was asked again, with the denial
    assert history_for_model("", [user, called, result])[-1].content == DENIED_TEXT
    assert "denied" in _row_summary(page, 2)


def test_always_allow_runs_the_next_call_without_asking_and_is_remembered(
        qtbot, tools_page, hearth_store) -> None:
    page = tools_page
    _choose(page, "current_datetime", "current_datetime")
    asked: list[str] = []
    page.controller.tool_driver.approvalNeeded.connect(lambda p: asked.append(p.call.name))
    send(qtbot, page, "What time is it?")
    _wait_approval(qtbot, page, "current_datetime")
    qtbot.mouseClick(page.approval_panel.always_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, page)
    assert asked == ["current_datetime"]  # the second call did not ask
    results = [m for m in _messages(hearth_store, page) if m.role == "tool"]
    assert [r.tool_turn.decision for r in results] == ["always", "always"]
    tool = page.tool_sources.box.tool("current_datetime")
    assert ToolPermissions(hearth_store).is_always_allowed(tool)  # saved in settings


def test_stop_while_a_call_waits_for_approval_runs_nothing(qtbot, tools_page, hearth_store):
    page = tools_page
    _choose(page, "current_datetime")
    send(qtbot, page, "What time is it?")
    _wait_approval(qtbot, page, "current_datetime")
    qtbot.mouseClick(page.composer.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.controller.busy, timeout=5_000)
    assert not page.approval_panel.isVisible() and not page.tool_step.isVisible()
    assert [m.role for m in _messages(hearth_store, page)] == ["user", "assistant"]
    assert "not run" in page.status_line.notice_label.text()
    # The next message still renders under templates that want every call answered: the
    # call that never ran is answered as not run.
    user, called = _messages(hearth_store, page)
    history = history_for_model("", [user, called, user])
    assert [m.role for m in history] == ["user", "assistant", "tool", "user"]
    assert history[2].content == NOT_RUN_TEXT
    assert history[2].tool_call_id == called.tool_calls[0].id
    _choose(page)
    send(qtbot, page, "Never mind.")
    wait_idle(qtbot, page)
    assert [m.role for m in _messages(hearth_store, page)][-1] == "assistant"


def test_the_step_cap_ends_the_loop_and_says_so(qtbot, tools_page, hearth_store) -> None:
    page = tools_page
    page.settings_panel.tools_panel.max_steps.setValue(2)
    assert hearth_store.get_setting(MAX_STEPS_KEY) == 2
    ToolPermissions(hearth_store).always_allow(page.tool_sources.box.tool("current_datetime"))
    _choose(page, "current_datetime", "current_datetime", "current_datetime")
    steps: list[str] = []
    page.controller.tool_driver.stepChanged.connect(lambda s, cap: steps.append(f"{s}/{cap}"))
    send(qtbot, page, "Loop forever")
    wait_idle(qtbot, page)
    roles = [m.role for m in _messages(hearth_store, page)]
    assert roles == ["user", "assistant", "tool", "assistant", "tool"]
    assert "2/2" in steps and "3/2" not in steps
    assert "Stopped after 2 tool steps" in page.status_line.notice_label.text()


def test_a_hostile_servers_result_cannot_make_its_destructive_tool_run(
        qtbot, tools_page, hearth_store, hearth_home, tmp_path) -> None:
    page = tools_page
    marker = tmp_path / "deleted"
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"hostile": {
        "command": sys.executable, "args": [str(SERVERS / "hostile_server.py")],
        "env": {"HOSTILE_MARKER": str(marker)}}}}))
    tools_panel = page.settings_panel.tools_panel
    assert tools_panel.import_file(str(config))
    qtbot.waitUntil(lambda: not page.tool_sources.connecting, timeout=30_000)
    assert page.tool_sources.box.tool("delete_all") is not None
    assert any(i.startswith("hostile: connected") for i in
               (tools_panel.servers.item(n).text() for n in range(tools_panel.servers.count())))
    # The model obeys the injection: step 2 calls delete_all (forced, as a compliant model would).
    _choose(page, "weather", "delete_all")
    send(qtbot, page, "Weather in Paris?")
    _wait_approval(qtbot, page, "weather")
    assert page.approval_panel.source.text() == "Source: MCP server hostile"
    qtbot.mouseClick(page.approval_panel.allow_button, Qt.MouseButton.LeftButton)
    _wait_approval(qtbot, page, "delete_all")
    assert page.approval_panel.source.text() == "Source: MCP server hostile"
    assert page.approval_panel.description.text().startswith(
        "Description (written by MCP server hostile, not checked by Hearth): Deletes every file")
    assert not marker.exists()  # it waits for the user, whatever the result said
    qtbot.mouseClick(page.approval_panel.deny_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, page)
    assert not marker.exists()
    weather = next(m for m in _messages(hearth_store, page) if m.role == "tool")
    assert "SYSTEM OVERRIDE" in weather.content and "\x1b" not in weather.content
    decisions = [m.tool_turn.decision for m in _messages(hearth_store, page) if m.role == "tool"]
    assert decisions == ["allowed", "denied"]


def test_stop_while_a_tool_runs_drops_its_result_and_ends_the_loop(
        qtbot, tools_page, hearth_store, tmp_path) -> None:
    page = tools_page
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"demo": {
        "command": sys.executable, "args": [str(SERVERS / "demo_server.py")]}}}))
    assert page.settings_panel.tools_panel.import_file(str(config))
    qtbot.waitUntil(lambda: page.tool_sources.box.tool("hang") is not None, timeout=30_000)
    _choose(page, "hang")
    send(qtbot, page, "Wait for ever")
    _wait_approval(qtbot, page, "hang")
    qtbot.mouseClick(page.approval_panel.allow_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.controller.tool_driver.running is not None, timeout=5_000)
    qtbot.mouseClick(page.composer.button, Qt.MouseButton.LeftButton)  # Stop
    qtbot.waitUntil(lambda: not page.controller.busy, timeout=2_000)
    assert page.composer.button.text() == "Send"
    assert [m.role for m in _messages(hearth_store, page)] == ["user", "assistant"]


def test_tool_turns_survive_the_upgrade_and_going_back_keeps_the_rest(tmp_path: Path) -> None:
    db_path = tmp_path / "hearth.db"
    migrate_to(db_path, "0007_chat_response_schema")
    with Store.open(db_path) as store:  # upgrades to head (0008)
        chat = store.create_chat("Tools")
        assert not chat.tools_enabled
        store.update_chat(chat.id, tools_enabled=True)
        assert store.get_chat(chat.id).tools_enabled
        store.add_message(chat.id, "user", "Time?")
        call = ToolCall("call_1", "current_datetime", "{}")
        store.add_message(chat.id, "assistant", "", tool=calls_data([call]))
        turn = ToolTurn("call_1", "current_datetime", "{}", "builtin", "allowed")
        store.add_message(chat.id, "tool", "Monday", tool=turn.to_dict())
        store.add_message(chat.id, "tool", "Again", tool=turn.to_dict())
        store.add_message(chat.id, "assistant", "It is Monday.")
        saved = store.list_messages(chat.id)
        assert saved[1].tool_calls == (call,) and saved[2].tool_turn == turn
    migrate_to(db_path, "0007_chat_response_schema", down=True)
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT id, parent_id, role FROM messages ORDER BY id").fetchall()
    conn.close()
    # The tool turns go; the answer now follows the turn that called them.
    assert rows == [(1, None, "user"), (2, 1, "assistant"), (5, 2, "assistant")]


def test_closing_the_window_stops_the_mcp_servers(qtbot, make_main_window, tmp_path) -> None:
    window = make_main_window()
    page = window.chat_page
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"demo": {
        "command": sys.executable, "args": [str(SERVERS / "demo_server.py")]}}}))
    assert page.settings_panel.tools_panel.import_file(str(config))
    qtbot.waitUntil(lambda: page.tool_sources.box.tool("pid") is not None, timeout=30_000)
    server = psutil.Process(int(page.tool_sources.box.run("pid", "{}").text))
    window.close()
    server.wait(timeout=10)  # gone (the fixture then checks that no thread was left running)
    assert not server.is_running()


@pytest.mark.parametrize("cut", range(1, 40, 3))
def test_the_window_reply_reader_shows_no_call_markup_while_streaming(cut: int) -> None:
    reply = ('Let me check. <tool_call>{"name": "calculator", "arguments": '
             '{"expression": "2+2"}}</tool_call>')
    reader = ReplyReader("hermes", starts_in_thinking=False)
    shown = [reader.feed(reply[i:i + cut]) for i in range(0, len(reply), cut)]
    shown.append(reader.finish())
    assert "".join(shown) == "Let me check."
    assert not any("<" in piece for piece in shown)
    assert reader.calls[0].name == "calculator"


def test_structured_output_on_offers_no_tools_and_the_panel_says_so(qtbot, tools_page,
                                                                      hearth_store):
    page = tools_page
    tools_panel = page.settings_panel.tools_panel
    editor = page.settings_panel.schema_editor
    assert not tools_panel.structured_note.isVisible()
    editor.editor.setPlainText('{"type": "object", "properties": {"a": {"type": "integer"}}, '
                               '"required": ["a"]}')
    qtbot.waitUntil(lambda: editor.switch.isEnabled(), timeout=5_000)
    qtbot.mouseClick(editor.switch, Qt.MouseButton.LeftButton)
    assert tools_panel.structured_note.isVisible()
    assert "structured output" in tools_panel.structured_note.text()
    _choose(page, "current_datetime")  # would force a call, were tools offered
    send(qtbot, page, "What time is it?")
    wait_idle(qtbot, page)
    assert not page.approval_panel.isVisible()
    user, answer = _messages(hearth_store, page)
    assert answer.role == "assistant" and not answer.tool_calls
    assert isinstance(json.loads(answer.content)["a"], int)
