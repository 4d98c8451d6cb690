"""Earlier replies' reasoning stays out of the prompt (issue 15): `history_for_model` sends the
answers alone unless the loaded model's template reads the reasoning itself; rendered through
the real prompt formatter and real chat templates, on a real Store."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine.inference.prompt_format import PromptFormatter
from app.engine.inference.reasoning import template_keeps_reasoning, without_reasoning
from app.services.chat_session import history_for_model
from app.testing.tiny_gguf import CHATML_TEMPLATE

TEMPLATES = Path(__file__).parent / "data" / "templates"
SECRET = "carry the seven twice"


def _template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def _second_turn(store, first_reply: str) -> list:
    """A chat whose first reply is ``first_reply``, and the user's next question."""
    chat = store.create_chat("t", "Be brief.")
    store.add_message(chat.id, "user", "What is 7 times 2?")
    store.add_message(chat.id, "assistant", first_reply)
    store.add_message(chat.id, "user", "And times 3?")
    return store.list_messages(chat.id)


@pytest.fixture
def chatml():
    formatter = PromptFormatter(CHATML_TEMPLATE)
    yield formatter
    formatter.close()


@pytest.mark.parametrize("reply", [
    f"<think>{SECRET}</think>It is 14.",
    f"{SECRET}\n</think>\n\nIt is 14.",  # the template opened the block in the prompt
    f"<think>\n{SECRET}\n</think>\nIt is <think>{SECRET}</think>14.",
])
def test_second_prompt_has_no_reasoning_of_the_first_reply(hearth_store, chatml, reply):
    branch = _second_turn(hearth_store, reply)
    prompt = chatml.render(history_for_model("Be brief.", branch)).text
    assert "It is" in prompt and "14." in prompt and "And times 3?" in prompt
    assert SECRET not in prompt and "think>" not in prompt


def test_keep_reasoning_sends_the_reply_as_written(hearth_store, chatml):
    branch = _second_turn(hearth_store, f"<think>{SECRET}</think>It is 14.")
    prompt = chatml.render(history_for_model("", branch, keep_reasoning=True)).text
    assert f"<think>{SECRET}</think>It is 14." in prompt


def test_a_reply_stopped_inside_its_thinking_is_not_sent_as_an_empty_turn(hearth_store, chatml):
    branch = _second_turn(hearth_store, f"<think>{SECRET}")
    history = history_for_model("", branch)
    assert [m.role for m in history] == ["user", "user"]  # merged into one turn when rendered
    prompt = chatml.render(history).text
    assert SECRET not in prompt and "What is 7 times 2?" in prompt and "And times 3?" in prompt


def test_user_text_that_mentions_think_tags_is_left_alone(hearth_store):
    chat = hearth_store.create_chat("t", "")
    hearth_store.add_message(chat.id, "user", "What does <think>x</think> mean?")
    history = history_for_model("", hearth_store.list_messages(chat.id))
    assert history[0].content == "What does <think>x</think> mean?"


@pytest.mark.parametrize(("name", "keeps"), [
    ("Qwen-Qwen3-0.6B.jinja", True),  # reads reasoning_content, keeps it mid tool-call only
    ("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", True),  # splits at </think> itself
    ("deepseek-ai-DeepSeek-V3.1.jinja", True),
    ("Qwen-Qwen2.5-7B-Instruct.jinja", False),
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", False),
    ("google-gemma-2-2b-it.jinja", False),
])
def test_which_templates_read_the_reasoning_themselves(name, keeps):
    assert template_keeps_reasoning(_template(name)) is keeps
    assert not template_keeps_reasoning(None) and not template_keeps_reasoning(CHATML_TEMPLATE)


@pytest.mark.parametrize("name", ["Qwen-Qwen3-0.6B.jinja",
                                  "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"])
def test_templates_that_keep_reasoning_still_drop_it_from_older_turns(hearth_store, name):
    """Given the replies as written (what their templates ask for), Qwen3's and DeepSeek-R1's
    own templates leave the first reply's reasoning out of the second prompt."""
    template = _template(name)
    branch = _second_turn(hearth_store, f"{SECRET}\n</think>\n\nIt is 14.")
    formatter = PromptFormatter(template, bos_token="<s>", eos_token="</s>")
    try:
        history = history_for_model("", branch,
                                    keep_reasoning=template_keeps_reasoning(template))
        prompt = formatter.render(history).text
    finally:
        formatter.close()
    assert "It is 14." in prompt and SECRET not in prompt


def test_without_reasoning_leaves_plain_replies_untouched():
    assert without_reasoning("  Indented code:\n    x = 1\n") == "  Indented code:\n    x = 1\n"
    assert without_reasoning(f"<think>{SECRET}</think>\n\nDone.") == "Done."
