"""The user's own presets (issue 15): save the chat's system prompt and sampling under a name,
apply, rename, delete, duplicate a read-only built-in, import and export JSON; on the real Chat
page and a real Store file, with the dialogs' static calls answered by the test."""

from __future__ import annotations

import json

import pytest
from chat_page_support import seed_chat
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from app.models.preset_files import MAX_FILE_BYTES
from app.models.presets import seed_builtin_presets

COURSE = {"Instruction prompting", "Chain of thought", "Tree of thought"}


class Dialogs:
    """Answers for the dialogs the preset menu opens, and what each message box said."""

    def __init__(self) -> None:
        self.names: list[str | None] = []  # None: the user cancels the name dialog
        self.answers: list[QMessageBox.StandardButton] = []  # for questions; default Yes
        self.shown: list[tuple[str, Qt.TextFormat]] = []
        self.open_path = ""
        self.save_path = ""
        self.asked_defaults: list[str] = []


@pytest.fixture
def dialogs(monkeypatch) -> Dialogs:
    d = Dialogs()

    def get_text(_parent, _title, _label, _echo, default=""):
        d.asked_defaults.append(default)
        name = d.names.pop(0)
        return ("", False) if name is None else (name, True)

    def exec_box(box):
        d.shown.append((box.text(), box.textFormat()))
        if box.icon() == QMessageBox.Icon.Question:
            return d.answers.pop(0) if d.answers else QMessageBox.StandardButton.Yes
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QInputDialog, "getText", get_text)
    monkeypatch.setattr(QMessageBox, "exec", exec_box)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (d.open_path, ""))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (d.save_path, ""))
    return d


@pytest.fixture
def chat_id(hearth_store) -> int:
    seed_builtin_presets(hearth_store)
    return seed_chat(hearth_store, "Presets")


@pytest.fixture
def panel(make_page, chat_id):
    return make_page().settings_panel


def _select(panel, name: str) -> None:
    panel.preset_combo.setCurrentIndex(panel.preset_combo.findText(name))


def _user_presets(store) -> dict:
    return {p.name: p for p in store.list_presets() if not p.builtin}


def test_save_the_chats_settings_as_a_preset_and_apply_it_later(panel, dialogs, hearth_store,
                                                                chat_id):
    panel.system_prompt.setPlainText("Answer in one haiku.")
    panel.temperature.setValue(1.3)
    panel.max_tokens.setValue(64)
    dialogs.names = ["Haiku poet"]
    panel.preset_menu.save_action.trigger()

    saved = _user_presets(hearth_store)["Haiku poet"]
    assert saved.system_prompt == "Answer in one haiku."
    assert (saved.sampling.temperature, saved.sampling.max_tokens) == (1.3, 64)
    assert panel.preset_combo.currentText() == "Haiku poet"

    _select(panel, "Chain of thought")
    assert hearth_store.get_chat(chat_id).system_prompt.startswith("You solve problems")
    _select(panel, "Haiku poet")
    chat = hearth_store.get_chat(chat_id)
    assert chat.system_prompt == "Answer in one haiku."
    assert (chat.sampling.temperature, chat.sampling.max_tokens) == (1.3, 64)
    assert panel.temperature.value() == 1.3


def test_saving_over_a_preset_asks_first_and_built_ins_cannot_be_replaced(panel, dialogs,
                                                                          hearth_store):
    panel.system_prompt.setPlainText("First version.")
    dialogs.names = ["Mine"]
    panel.preset_menu.save_action.trigger()
    panel.system_prompt.setPlainText("Second version.")

    dialogs.names, dialogs.answers = ["Mine"], [QMessageBox.StandardButton.Cancel]
    panel.preset_menu.save_action.trigger()
    assert _user_presets(hearth_store)["Mine"].system_prompt == "First version."
    assert dialogs.shown[-1][0] == "Replace the preset “Mine”?"

    dialogs.names = ["Mine"]
    panel.preset_menu.save_action.trigger()
    assert _user_presets(hearth_store)["Mine"].system_prompt == "Second version."

    dialogs.names = ["Chain of thought"]
    panel.preset_menu.save_action.trigger()
    assert "built-in preset" in dialogs.shown[-1][0]
    builtin = next(p for p in hearth_store.list_presets() if p.name == "Chain of thought")
    assert builtin.builtin and builtin.system_prompt.startswith("You solve problems")

    dialogs.names = ["   "]
    panel.preset_menu.save_action.trigger()
    assert "name is empty" in dialogs.shown[-1][0]
    assert set(_user_presets(hearth_store)) == {"Mine"}


def test_built_ins_are_read_only_and_duplicate_and_edit_makes_a_user_copy(panel, dialogs,
                                                                         hearth_store, chat_id):
    builtins = {p.name for p in hearth_store.list_presets() if p.builtin}
    assert COURSE <= builtins
    menu = panel.preset_menu
    _select(panel, "Tree of thought")
    assert not menu.rename_action.isEnabled() and not menu.delete_action.isEnabled()
    assert menu.duplicate_action.isEnabled()

    dialogs.names = ["Tree of thought (copy)"]
    menu.duplicate_action.trigger()
    assert dialogs.asked_defaults[-1] == "Tree of thought (copy)"
    original = next(p for p in hearth_store.list_presets() if p.name == "Tree of thought")
    copy = _user_presets(hearth_store)["Tree of thought (copy)"]
    assert (copy.system_prompt, copy.sampling) == (original.system_prompt, original.sampling)
    assert panel.preset_combo.currentText() == "Tree of thought (copy)"
    assert menu.rename_action.isEnabled() and menu.delete_action.isEnabled()
    chat = hearth_store.get_chat(chat_id)
    assert chat.system_prompt == original.system_prompt
    assert chat.sampling.max_tokens == original.sampling.max_tokens

    _select(panel, "Tree of thought")
    dialogs.names = [None]
    menu.duplicate_action.trigger()
    assert dialogs.asked_defaults[-1] == "Tree of thought (copy) 2"  # a free name is offered
    assert len(_user_presets(hearth_store)) == 1  # cancelled: nothing made


def test_rename_and_delete_a_user_preset(panel, dialogs, hearth_store, chat_id):
    panel.system_prompt.setPlainText("Reply like a pirate.")
    dialogs.names = ["Pirate", "Sea dog"]
    panel.preset_menu.save_action.trigger()
    panel.preset_menu.rename_action.trigger()
    assert set(_user_presets(hearth_store)) == {"Sea dog"}
    assert panel.preset_combo.currentText() == "Sea dog"
    assert panel.preset_combo.findText("Pirate") == -1

    panel.system_prompt.setPlainText("Reply like a parrot.")
    dialogs.names = ["Parrot"]
    panel.preset_menu.save_action.trigger()
    dialogs.names = ["Sea dog"]
    panel.preset_menu.rename_action.trigger()
    assert "already exists" in dialogs.shown[-1][0]
    assert set(_user_presets(hearth_store)) == {"Sea dog", "Parrot"}

    dialogs.answers = [QMessageBox.StandardButton.Cancel]
    panel.preset_menu.delete_action.trigger()
    assert "Parrot" in _user_presets(hearth_store)
    panel.preset_menu.delete_action.trigger()
    assert set(_user_presets(hearth_store)) == {"Sea dog"}
    assert panel.preset_combo.currentText() == "Custom"
    panel.flush()  # the typing's pending save
    assert hearth_store.get_chat(chat_id).system_prompt == "Reply like a parrot."


def test_export_then_import_brings_the_presets_back(panel, dialogs, hearth_store, tmp_path):
    assert not panel.preset_menu.export_action.isEnabled()  # nothing of the user's to export
    panel.system_prompt.setPlainText("Translate to French.")
    panel.seed.setValue(7)
    dialogs.names = ["French", "Terse"]
    panel.preset_menu.save_action.trigger()
    panel.system_prompt.setPlainText("Be terse.")
    panel.preset_menu.save_action.trigger()
    assert panel.preset_menu.export_action.isEnabled()

    dialogs.save_path = str(tmp_path / "mine.json")
    panel.preset_menu.export_action.trigger()
    exported = json.loads((tmp_path / "mine.json").read_text(encoding="utf-8"))
    assert {p["name"] for p in exported} == {"French", "Terse"}  # built-ins stay out
    assert next(p for p in exported if p["name"] == "French")["sampling"]["seed"] == 7

    for name in ("French", "Terse"):
        hearth_store.delete_preset(name)
    dialogs.open_path = dialogs.save_path
    panel.preset_menu.import_action.trigger()
    back = _user_presets(hearth_store)
    assert back["French"].system_prompt == "Translate to French."
    assert back["French"].sampling.seed == 7
    assert panel.preset_combo.findText("Terse") > 0

    single = tmp_path / "one.json"  # one preset, not a list; sampling optional
    single.write_text(json.dumps({"name": "Solo", "system_prompt": "Alone."}), encoding="utf-8")
    dialogs.open_path = str(single)
    dialogs.answers = []
    panel.preset_menu.import_action.trigger()
    assert _user_presets(hearth_store)["Solo"].sampling is None
    assert panel.preset_combo.findText("Solo") > 0
    assert panel.preset_combo.currentText() == "Terse"  # listed, not applied to the chat

    dialogs.answers = [QMessageBox.StandardButton.Cancel]  # importing over "Solo": asked first
    single.write_text(json.dumps({"name": "Solo", "system_prompt": "Changed."}), "utf-8")
    panel.preset_menu.import_action.trigger()
    assert _user_presets(hearth_store)["Solo"].system_prompt == "Alone."


GOOD = {"name": "Good one", "system_prompt": "Fine."}


@pytest.mark.parametrize(("content", "said"), [
    (b"{" + b" " * (MAX_FILE_BYTES + 10) + b"}", "larger than"),
    (b"not json at all", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (json.dumps([GOOD, {"name": 42, "system_prompt": "x"}]).encode(), "Preset 2: the name must"),
    (json.dumps([GOOD, {"name": "Hot", "system_prompt": "x",
                        "sampling": {"temperature": "hot"}}]).encode(), "temperature must be"),
    (json.dumps({"name": "Wide", "system_prompt": "x", "sampling": {"top_p": 5}}).encode(),
     "top_p must lie between 0 and 1"),
    (b'{"name": "NaN", "system_prompt": "x", "sampling": {"min_p": NaN}}', "NaN"),
    (json.dumps({"name": "Flag", "system_prompt": "x", "sampling": {"top_k": True}}).encode(),
     "top_k must be a whole number"),
    (json.dumps({"name": "Odd", "system_prompt": "x", "sampling": {"rm -rf": 1}}).encode(),
     "unknown sampling setting"),
    (json.dumps({"name": "x" * 500, "system_prompt": "x"}).encode(), "longer than 80"),
    (json.dumps({"name": "two\nlines", "system_prompt": "x"}).encode(), "line breaks"),
    (json.dumps({"name": "Long", "system_prompt": "y" * 50_000}).encode(), "system_prompt is"),
    (json.dumps({"name": "Prompt", "system_prompt": ["a"]}).encode(), "system_prompt must be"),
    (json.dumps([GOOD, GOOD]).encode(), "appears twice"),
    (json.dumps([GOOD] * 101).encode(), "at most 100"),
    (json.dumps([]).encode(), "no presets"),
    (json.dumps(["just a string"]).encode(), "must be an object"),
    (json.dumps({"name": "Chain of thought", "system_prompt": "Hijack."}).encode(),
     "built-in preset"),
])
def test_a_bad_file_imports_nothing_and_says_why(panel, dialogs, hearth_store, tmp_path,
                                                  content, said):
    before = hearth_store.list_presets()
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    dialogs.open_path = str(bad)
    panel.preset_menu.import_action.trigger()
    assert hearth_store.list_presets() == before
    text, text_format = dialogs.shown[-1]
    assert text.startswith("Nothing was imported.") and said in text
    assert text_format == Qt.TextFormat.PlainText
    assert len(text) < 400


def test_html_in_imported_names_is_shown_as_text(panel, dialogs, hearth_store, tmp_path):
    name = '<b>Bold</b> <img src="http://example.com/x.png">'
    file = tmp_path / "html.json"
    file.write_text(json.dumps([{"name": name, "system_prompt": "<i>hi</i>"}]), "utf-8")
    dialogs.open_path = str(file)
    panel.preset_menu.import_action.trigger()
    assert name in _user_presets(hearth_store)
    assert panel.preset_combo.itemText(panel.preset_combo.findData(name)) == name

    dialogs.answers = [QMessageBox.StandardButton.Cancel]
    panel.preset_menu.import_action.trigger()  # the same name again: the question names it
    text, text_format = dialogs.shown[-1]
    assert name in text and text_format == Qt.TextFormat.PlainText


def test_the_store_saves_a_batch_whole_or_not_at_all(hearth_store):
    seed_builtin_presets(hearth_store)
    before = hearth_store.list_presets()
    with pytest.raises(ValueError, match="built-in"):
        hearth_store.save_user_presets([("New", "x", None), ("Plain assistant", "y", None)])
    assert hearth_store.list_presets() == before
    with pytest.raises(ValueError, match="built in"):
        hearth_store.rename_preset("Plain assistant", "Mine now")


def test_a_preset_at_the_edges_of_every_range_applies_exactly(panel, dialogs, hearth_store,
                                                              chat_id, tmp_path):
    """The import's limits are the settings' own: nothing it accepts is clamped when shown."""
    from app.models.preset_files import SAMPLING_LIMITS

    for edge in (1, 2):
        sampling = {name: limits[edge] for name, limits in SAMPLING_LIMITS.items()}
        file = tmp_path / f"edge{edge}.json"
        file.write_text(json.dumps({"name": f"Edge {edge}", "system_prompt": f"Edge {edge}.",
                                    "sampling": sampling}), "utf-8")
        dialogs.open_path = str(file)
        panel.preset_menu.import_action.trigger()
        _select(panel, f"Edge {edge}")
        shown = {name: getattr(panel, name).value() for name in SAMPLING_LIMITS}
        assert shown == sampling
        stored = hearth_store.get_chat(chat_id).sampling.to_dict()
        assert {name: stored[name] for name in SAMPLING_LIMITS} == sampling
