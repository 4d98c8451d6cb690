"""A reply's reasoning is stored apart from its answer (issue 15, migration 0012): split when
the reply ends, joined back only for templates that read it, shown with how long the model
thought, and exported on its own. Real Store, real prompt formatter, real window."""

from __future__ import annotations

import json

import pytest

from app.engine.inference.prompt_format import PromptFormatter
from app.engine.inference.reasoning import template_keeps_reasoning
from app.engine.types import GenerationStats
from app.models.chat_export import export_json, export_markdown
from app.models.reply_writer import ReplyWriter
from app.services.chat_session import history_for_model

SECRET = "carry the seven twice"
# A template that reads reasoning_content, and one that splits replies at "</think>" itself.
FIELD_TEMPLATE = ("{% for m in messages %}[{{ m.role }}]{% if m.reasoning_content %}"
                  "(R:{{ m.reasoning_content }}){% endif %}{{ m.content }}\n{% endfor %}")
SPLIT_TEMPLATE = ("{# replies are split at '</think>' #}"
                  "{% for m in messages %}[{{ m.role }}]{{ m.content }}\n{% endfor %}")


def _reply(store, text: str, stats: GenerationStats | None = None):
    """A chat with one question and a reply streamed as ``text`` through a ReplyWriter."""
    chat = store.create_chat("t")
    store.add_message(chat.id, "user", "What is 7 times 2?")
    placeholder = store.add_message(chat.id, "assistant", "", status="streaming")
    writer = ReplyWriter(store, placeholder.id, interval=0.01)
    for piece in (text[: len(text) // 2], text[len(text) // 2:]):
        writer.append(piece)
    writer.finish(stats or GenerationStats(stop_reason="eos"))
    assert writer.wait(10)
    return chat, store.get_message(placeholder.id)


def test_the_reasoning_is_stored_apart_when_the_reply_ends(hearth_store):
    _chat, stored = _reply(hearth_store, f"<think>\n{SECRET}\n</think>\n\nIt is 14.")
    assert stored.content == "It is 14." and stored.reasoning == SECRET


def test_a_reply_the_template_opened_in_thinking_is_split_too(hearth_store):
    stats = GenerationStats(opens_thinking=True, thinking_seconds=1.5)
    _chat, stored = _reply(hearth_store, f"{SECRET}\n</think>\n\nIt is 14.", stats)
    assert stored.content == "It is 14." and stored.reasoning == SECRET
    assert stored.stats.thinking_seconds == pytest.approx(1.5)


def test_a_reply_without_reasoning_is_stored_exactly_as_written(hearth_store):
    text = "  Indented code:\n    x = 1\n"
    _chat, stored = _reply(hearth_store, text)
    assert stored.content == text and stored.reasoning is None


def test_older_rows_with_reasoning_inside_still_split(hearth_store):
    chat = hearth_store.create_chat("t")
    hearth_store.add_message(chat.id, "user", "What is 7 times 2?")
    old = hearth_store.add_message(chat.id, "assistant", f"<think>{SECRET}</think>It is 14.")
    assert old.reasoning is None
    assert old.answer_and_reasoning == ("It is 14.", SECRET)
    history = history_for_model("", hearth_store.list_messages(chat.id))
    assert history[-1].content == "It is 14." and not history[-1].reasoning_content


def test_the_history_leaves_stored_reasoning_out_unless_the_template_reads_it(hearth_store):
    chat, _ = _reply(hearth_store, f"<think>{SECRET}</think>It is 14.")
    hearth_store.add_message(chat.id, "user", "And times 3?")
    branch = hearth_store.list_messages(chat.id)
    prompts = {}
    for name, template in (("field", FIELD_TEMPLATE), ("split", SPLIT_TEMPLATE)):
        formatter = PromptFormatter(template)
        try:
            prompts[name, False] = formatter.render(history_for_model("", branch)).text
            keep = template_keeps_reasoning(template)
            prompts[name, True] = formatter.render(
                history_for_model("", branch, keep_reasoning=keep)).text
        finally:
            formatter.close()
    assert SECRET not in prompts["field", False] and SECRET not in prompts["split", False]
    # Read as its own field by the template that asks for it, in think tags by the other.
    assert f"[assistant](R:{SECRET})It is 14." in prompts["field", True]
    assert f"[assistant]<think>\n{SECRET}\n</think>\n\nIt is 14." in prompts["split", True]


def test_exports_keep_the_reasoning_apart(hearth_store):
    stats = GenerationStats(thinking_seconds=3.4, generated_tokens=9)
    chat, stored = _reply(hearth_store, f"<think>{SECRET}\nthen add</think>It is 14.", stats)
    messages = hearth_store.list_messages(chat.id)
    chat = hearth_store.get_chat(chat.id)
    markdown = export_markdown(chat, messages)
    assert f"> **Reasoning** (thought for 3.4 s)\n>\n> {SECRET}\n> then add\n\nIt is 14." \
        in markdown
    data = json.loads(export_json(chat, messages))
    reply = data["messages"][-1]
    assert reply["content"] == "It is 14." and reply["reasoning"] == f"{SECRET}\nthen add"
    assert "reasoning" not in data["messages"][0]


def test_the_window_shows_how_long_the_model_thought(qtbot, make_page, hearth_store):
    stats = GenerationStats(thinking_seconds=3.4, generated_tokens=9, stop_reason="eos")
    chat, stored = _reply(hearth_store, f"<think>{SECRET}</think>It is 14.", stats)
    page = make_page()
    page.open_chat(chat.id)
    index = page.messages.index(page.messages.rowCount() - 1, 0)
    delegate = page.view.delegate
    rendered = delegate._rendered(index, delegate._content_width())
    assert rendered.thinking_label.startswith("▸ Thought for 3.4 s")
    assert "It is 14." in rendered.body.toPlainText()
    assert SECRET not in rendered.body.toPlainText()


def test_copy_gives_the_answer_and_copy_with_reasoning_the_stored_reasoning_too(
        qtbot, make_page, hearth_store):
    from PySide6.QtGui import QGuiApplication

    chat, _stored = _reply(hearth_store, f"<think>{SECRET}</think>It is 14.")
    page = make_page()
    page.open_chat(chat.id)
    view = page.view
    menu = view.context_menu_at(view.visualRect(page.messages.index(1, 0)).center())
    assert [a.text() for a in menu.actions()][:2] == ["Copy", "Copy with reasoning"]
    view.copy_action.trigger()
    assert QGuiApplication.clipboard().text() == "It is 14."
    view.copy_reasoning_action.trigger()
    assert QGuiApplication.clipboard().text() == f"<think>\n{SECRET}\n</think>\n\nIt is 14."
