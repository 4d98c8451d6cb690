"""Chat export to Markdown and JSON from real Store records."""

from __future__ import annotations

import json

from app.engine.types import GenerationStats, Sampling
from app.models.chat_export import export_json, export_markdown

STATS = GenerationStats(
    prompt_tokens=12, generated_tokens=30, time_to_first_token=0.25, tokens_per_second=42.5,
    stop_reason="eos", context_used=42, n_ctx=2048,
)


def _chat(store):
    chat = store.create_chat(
        "Sea poems",
        system_prompt="You are a poet.",
        sampling=Sampling(temperature=0.3, max_tokens=64, seed=7),
        model_path="/models/gemma.gguf",
        overflow_policy="stop",
    )
    store.add_message(chat.id, "user", "Write about the sea.")
    store.add_message(chat.id, "assistant", "Waves *fold*\n\n```python\nprint('sea')\n```",
                      stats=STATS)
    store.add_message(chat.id, "user", "Longer, please.")
    store.add_message(chat.id, "assistant", "The tide", status="partial")
    store.add_message(chat.id, "user", "Again")
    store.add_message(chat.id, "assistant", "", status="failed", error="No model is loaded.")
    return store.get_chat(chat.id), store.list_messages(chat.id)


def test_markdown_has_title_settings_and_every_message(hearth_store) -> None:
    chat, messages = _chat(hearth_store)
    text = export_markdown(chat, messages)
    assert text.startswith("# Sea poems\n")
    assert "`/models/gemma.gguf`" in text
    assert "temperature 0.3" in text and "max tokens 64" in text and "seed 7" in text
    assert "Overflow policy: stop" in text
    assert "## System prompt\n\nYou are a poet." in text
    assert "## You\n\nWrite about the sea." in text
    assert "```python\nprint('sea')\n```" in text  # code kept verbatim
    assert "30 tokens · 42.5 tok/s · first token after 0.25 s" in text
    assert "## Assistant (partial)\n\nThe tide" in text
    assert "## Assistant (failed)" in text and "> Failed: No model is loaded." in text
    # Messages appear in chat order.
    assert text.index("Write about the sea.") < text.index("Longer, please.") < text.index("Again")


def test_json_round_trips_everything(hearth_store) -> None:
    chat, messages = _chat(hearth_store)
    data = json.loads(export_json(chat, messages))
    assert data["format"] == "hearth-chat" and data["version"] == 1
    assert data["title"] == "Sea poems"
    assert data["model_path"] == "/models/gemma.gguf"
    assert data["system_prompt"] == "You are a poet."
    assert data["sampling"]["temperature"] == 0.3 and data["sampling"]["seed"] == 7
    assert data["overflow_policy"] == "stop"
    assert data["created_at"] == chat.created_at.isoformat()
    assert data["updated_at"] == chat.updated_at.isoformat()
    got = [(m["role"], m["content"], m["status"]) for m in data["messages"]]
    assert got == [(m.role, m.content, m.status) for m in messages]
    assert data["messages"][1]["stats"] == STATS.to_dict()
    assert data["messages"][0]["stats"] is None
    assert data["messages"][5]["error"] == "No model is loaded."
    assert data["messages"][0]["created_at"] == messages[0].created_at.isoformat()


def test_json_keeps_non_ascii_text_readable(hearth_store) -> None:
    chat = hearth_store.create_chat("Grüße")
    hearth_store.add_message(chat.id, "user", "naïve café ☕")
    text = export_json(hearth_store.get_chat(chat.id), hearth_store.list_messages(chat.id))
    assert "naïve café ☕" in text


def test_export_writes_the_branch_on_screen(hearth_store) -> None:
    chat = hearth_store.create_chat("Two answers")
    question = hearth_store.add_message(chat.id, "user", "Best sea creature?")
    octopus = hearth_store.add_message(chat.id, "assistant", "The octopus")
    hearth_store.add_message(chat.id, "assistant", "The narwhal", parent_id=question.id)
    text = export_markdown(chat, hearth_store.list_messages(chat.id))
    assert "The narwhal" in text and "octopus" not in text  # the newest version is shown
    hearth_store.show_version(chat.id, octopus.id)
    data = json.loads(export_json(chat, hearth_store.list_messages(chat.id)))
    assert [m["content"] for m in data["messages"]] == ["Best sea creature?", "The octopus"]
