"""The Chat page's settings panel, model picker, export, drafts and chat list order."""

from __future__ import annotations

import json

import pytest
from chat_page_support import (
    seed_chat,
    send,
    wait_idle,
)
from PySide6.QtCore import Qt

from app.engine.gguf.info import read_model_info
from app.engine.inference.prompt_format import PLAIN_FORMAT_LABEL
from app.engine.types import GenerationStats

# -- settings, model picker, export ----------------------------------------------------------------


def test_settings_panel_presets_and_sampling_persist(qtbot, make_page, hearth_store):
    hearth_store.upsert_preset("Plain assistant", "You are a helpful assistant.", builtin=True)
    hearth_store.upsert_preset("Chain of thought", "Think step by step, then answer.",
                               builtin=True)
    chat_id = seed_chat(hearth_store, "Settings")
    page = make_page()
    panel = page.settings_panel
    names = [panel.preset_combo.itemText(i) for i in range(panel.preset_combo.count())]
    assert {"Plain assistant", "Chain of thought"} <= set(names)

    panel.preset_combo.setCurrentIndex(panel.preset_combo.findText("Chain of thought"))
    assert panel.system_prompt.toPlainText() == "Think step by step, then answer."
    assert hearth_store.get_chat(chat_id).system_prompt == "Think step by step, then answer."

    panel.temperature.setValue(0.4)
    panel.top_k.setValue(12)
    panel.seed.setValue(42)
    panel.overflow_combo.setCurrentIndex(panel.overflow_combo.findData("stop"))
    chat = hearth_store.get_chat(chat_id)
    assert (chat.sampling.temperature, chat.sampling.top_k, chat.sampling.seed) == (0.4, 12, 42)
    assert chat.overflow_policy == "stop"

    panel.system_prompt.moveCursor(panel.system_prompt.textCursor().MoveOperation.End)
    qtbot.keyClicks(panel.system_prompt, " Be brief.")
    assert panel.preset_combo.currentText() == "Custom"
    qtbot.waitUntil(lambda: hearth_store.get_chat(chat_id).system_prompt.endswith("Be brief."))


def test_model_picker_loads_fails_and_ejects(qtbot, bridge, make_page, starter_model,
                                             hearth_store, tmp_path):
    hearth_store.add_model_file(read_model_info(starter_model), source="starter")
    page = make_page()
    picker = page.model_picker
    assert picker.combo.count() == 1 and picker.loaded_label.text() == "No model loaded"
    progress = []
    picker.progress.valueChanged.connect(progress.append)
    with qtbot.waitSignal(bridge.loaded, timeout=60_000):
        qtbot.mouseClick(picker.load_button, Qt.MouseButton.LeftButton)
    assert progress and max(progress) == 100 and not picker.progress.isVisible()
    assert bridge.n_ctx == 8192  # min(8192, the model's 32768)
    assert "Gemma" in picker.loaded_label.text() and "8192" in picker.loaded_label.text()
    assert picker.format_label.text() == PLAIN_FORMAT_LABEL
    assert page.status_line.context_bar.maximum() == 8192

    bad = tmp_path / "notes.gguf"
    bad.write_text("this is not a model")
    with qtbot.waitSignal(bridge.failed, timeout=60_000):
        picker.load_model(str(bad))
    assert picker.error_label.isVisible() and picker.error_label.text()
    assert "Gemma" in picker.loaded_label.text()  # the previous model stays
    assert bridge.loaded_path == str(starter_model)

    with qtbot.waitSignal(bridge.unloaded, timeout=60_000):
        qtbot.mouseClick(picker.eject_button, Qt.MouseButton.LeftButton)
    assert picker.loaded_label.text() == "No model loaded" and not picker.eject_button.isEnabled()


def test_export_writes_markdown_and_json(qtbot, make_page, hearth_store, tmp_path):
    chat_id = seed_chat(hearth_store, "Export me", ("user", "Question?"), ("assistant", "Answer."))
    hearth_store.update_chat(chat_id, system_prompt="Be kind.")
    page = make_page()
    assert page.export_markdown_button.isEnabled()
    md = page.export_to(tmp_path / "chat.md", "markdown").read_text(encoding="utf-8")
    assert md.startswith("# Export me") and "Be kind." in md
    assert "## You\n\nQuestion?" in md and "## Assistant\n\nAnswer." in md
    data = json.loads(page.export_to(tmp_path / "chat.json", "json").read_text(encoding="utf-8"))
    assert [m["content"] for m in data["messages"]] == ["Question?", "Answer."]
    assert data["system_prompt"] == "Be kind."
    assert data["messages"][1]["stats"]["generated_tokens"] == 5


def test_cancelling_an_edit_deletes_nothing_and_drafts_survive_switching(qtbot, make_page,
                                                                         hearth_store):
    first = seed_chat(hearth_store, "First", ("user", "original"), ("assistant", "reply"))
    second = seed_chat(hearth_store, "Second", ("user", "other"))
    page = make_page()
    page.open_chat(first)
    page.view.setCurrentIndex(page.messages.index(0, 0))
    page.view.edit_action.trigger()
    assert page.composer.text() == "original" and page.composer.edit_banner.isVisible()
    qtbot.mouseClick(page.composer.cancel_edit_button, Qt.MouseButton.LeftButton)
    assert page.composer.editing_id is None and page.composer.text() == ""
    assert hearth_store.count_messages(first) == 2

    page.composer.input.setPlainText("half-written thought")
    page.open_chat(second)
    assert page.composer.text() == "half-written thought"


def test_opening_a_chat_shows_its_last_reply_numbers(qtbot, make_page, hearth_store):

    chat = hearth_store.create_chat("old chat")
    hearth_store.add_message(chat.id, "user", "hi")
    stats = GenerationStats(generated_tokens=12, tokens_per_second=42.0, context_used=345,
                            n_ctx=2048)
    hearth_store.add_message(chat.id, "assistant", "hello", stats=stats)
    page = make_page()
    page.open_chat(chat.id)
    assert page.status_line.speed_label.text() == "42.0 tok/s"
    assert page.status_line.context_bar.value() == 345
    assert page.status_line.context_bar.maximum() == 2048


def test_with_no_chat_open_the_settings_show_what_a_new_chat_gets(make_page):
    from app.engine.types import Sampling

    panel = make_page().settings_panel
    defaults = Sampling()
    assert not panel.isEnabled()
    assert panel.temperature.value() == pytest.approx(defaults.temperature)
    assert panel.max_tokens.value() == defaults.max_tokens
    assert panel.repeat_penalty.value() == pytest.approx(defaults.repeat_penalty)


def test_opening_and_leaving_a_chat_keeps_sampling_the_panel_cannot_show(qtbot, make_page,
                                                                        hearth_store, monkeypatch):
    from app.engine.types import Sampling

    wild = Sampling(temperature=2.5, max_tokens=200_000, top_k=40, stop=["###"])
    odd = hearth_store.create_chat("Set by the CLI", sampling=wild).id
    other = seed_chat(hearth_store, "Other", ("user", "hi"))
    page = make_page()
    writes = []
    real_update = hearth_store.update_chat
    monkeypatch.setattr(hearth_store, "update_chat",
                        lambda chat_id, **kw: writes.append(chat_id) or real_update(chat_id, **kw))
    page.open_chat(odd)
    assert page.settings_panel.temperature.value() == 2.0  # the most the spin box shows
    page.open_chat(other)
    page.open_chat(odd)
    page.open_chat(other)
    assert writes == []
    assert hearth_store.get_chat(odd).sampling == wild

    # A user edit saves that field only; the values the panel cannot show survive it.
    page.open_chat(odd)
    page.settings_panel.top_k.setValue(7)
    page.open_chat(other)
    assert hearth_store.get_chat(odd).sampling == Sampling(
        temperature=2.5, max_tokens=200_000, top_k=7, stop=["###"])


def test_model_picker_recovers_from_an_unexpected_load_failure(qtbot, bridge, make_page,
                                                               tiny_model, monkeypatch):
    from app.engine.serving import loaded_model

    class Broken(RuntimeError):
        pass

    def broken(*_args, **_kwargs):
        raise Broken("the loader broke")

    monkeypatch.setattr(loaded_model, "Runtime", broken)
    page = make_page()
    picker = page.model_picker
    with qtbot.waitSignal(bridge.failed, timeout=60_000):
        picker.load_model(str(tiny_model))
    assert not picker.loading
    assert picker.load_button.text() == "Load" and not picker.progress.isVisible()
    assert "the loader broke" in picker.error_label.text()


def test_sending_moves_the_chat_to_the_top_without_reloading_the_list(qtbot, make_page,
                                                                      hearth_store, monkeypatch):
    older = hearth_store.create_chat("New chat").id
    newer = seed_chat(hearth_store, "Newer", ("user", "hi"))
    page = make_page()
    page.open_chat(older)
    assert page.chat_list.chat_ids() == [newer, older]
    reloads = []
    real_list = hearth_store.list_chats
    monkeypatch.setattr(hearth_store, "list_chats", lambda: reloads.append(1) or real_list())
    send(qtbot, page, "Plan a trip to Porto")
    wait_idle(qtbot, page)  # fails (no model); the chat was still used
    assert reloads == []
    assert page.chat_list.chat_ids() == [older, newer]
    assert page.chat_list.current_chat_id() == older
    assert page.chat_list.chats.item(0).text() == "Plan a trip to Porto"
    assert [c.id for c in real_list()] == [older, newer]  # the same order as the Store's
