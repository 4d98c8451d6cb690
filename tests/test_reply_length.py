"""The default reply length is "until the model stops or the context is full" (issue 15): the
chat settings show it as "until it stops", a limit is still available, presets carry it, and
stored chats keep their own limit. Real Store, real settings panel."""

from __future__ import annotations

import json

import pytest

from app.engine.inference.context_window import reply_reserve
from app.engine.types import Sampling
from app.models.preset_files import PresetFileError, parse_presets


def test_a_new_chat_has_no_reply_limit_and_the_panel_says_so(make_page):
    page = make_page()
    page.new_chat()
    panel = page.settings_panel
    assert panel.max_tokens.value() == 0 and panel.max_tokens.text() == "until it stops"
    panel.max_tokens.setValue(300)  # a limit is still there to choose
    assert panel.max_tokens.text() == "300"


def test_a_stored_chat_keeps_its_limit(make_page, hearth_store):
    chat = hearth_store.create_chat("Old", sampling=Sampling(max_tokens=512))
    page = make_page()
    page.open_chat(chat.id)
    assert page.settings_panel.max_tokens.value() == 512
    assert hearth_store.get_chat(chat.id).sampling.max_tokens == 512


def test_no_limit_keeps_a_quarter_of_the_context_when_the_history_is_trimmed():
    assert Sampling().reply_limit is None and Sampling(max_tokens=64).reply_limit == 64
    assert reply_reserve(4096, Sampling().reply_limit) == 1024
    assert reply_reserve(4096, Sampling(max_tokens=64).reply_limit) == 64


def test_presets_accept_until_it_stops_and_refuse_nonsense():
    preset = {"name": "Long", "system_prompt": "x", "sampling": {"max_tokens": 0}}
    [parsed] = parse_presets(json.dumps(preset))
    assert parsed.sampling is not None and parsed.sampling.reply_limit is None
    preset["sampling"] = {"max_tokens": -3}
    with pytest.raises(PresetFileError, match="max_tokens"):
        parse_presets(json.dumps(preset))
