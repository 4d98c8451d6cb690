"""Prompt formatting with strict templates: alternating roles, no system role, broken Jinja."""

from __future__ import annotations

import pytest

from app.engine.inference.prompt_format import (
    PLAIN_STOPS,
    PromptFormatError,
    PromptFormatter,
    fold_system,
    normalize,
)
from app.engine.types import ChatMessage

# Like Gemma's and Mistral's templates: no system role, and user/assistant must alternate
# starting with the user.
STRICT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}"
    "{% endif %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

# Alternation is enforced but a system turn is welcome.
ALTERNATING_WITH_SYSTEM = (
    "{% set turns = messages | rejectattr('role', 'equalto', 'system') | list %}"
    "{% for message in turns %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate') }}"
    "{% endif %}{% endfor %}"
    "{% for message in messages %}[{{ message['role'] }}]{{ message['content'] }}{% endfor %}"
    "[assistant]"
)

U = lambda text: ChatMessage("user", text)  # noqa: E731
A = lambda text: ChatMessage("assistant", text)  # noqa: E731
S = lambda text: ChatMessage("system", text)  # noqa: E731


def test_normalize_merges_consecutive_turns_of_a_role():
    assert normalize([S("sys"), U("one"), U("two"), A("x"), A("y"), U("three")]) == [
        S("sys"), U("one\n\ntwo"), A("x\n\ny"), U("three")]


def test_normalize_starts_with_the_user():
    assert normalize([S("sys"), A("greeting"), U("hi")]) == [S("sys"), U("hi")]
    assert normalize([A("greeting"), A("more"), U("hi"), A("ok")]) == [U("hi"), A("ok")]


def test_normalize_skips_empty_text_when_merging():
    assert normalize([U("one"), U(""), U("two")]) == [U("one\n\ntwo")]


def test_fold_system_moves_the_system_prompt_into_the_first_user_turn():
    assert fold_system([S("Be brief."), U("hi"), A("ok")]) == [U("Be brief.\n\nhi"), A("ok")]
    assert fold_system([S("Be brief.")]) == [U("Be brief.")]


def test_two_user_turns_in_a_row_render_with_a_strict_template():
    # A failed reply is left out of history, so the user spoke twice in a row.
    fmt = PromptFormatter(STRICT_TEMPLATE, bos_token="<bos>", eos_token="<eos>")
    prompt = fmt.render([S("Be brief."), U("hello"), A("hi"), U("first try"), U("again")])
    assert prompt.uses_template
    assert prompt.text == (
        "<bos><start_of_turn>user\nBe brief.\n\nhello<end_of_turn>\n"
        "<start_of_turn>model\nhi<end_of_turn>\n"
        "<start_of_turn>user\nfirst try\n\nagain<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_strict_template_without_system_prompt():
    fmt = PromptFormatter(STRICT_TEMPLATE, bos_token="<bos>", eos_token="<eos>")
    text = fmt.render([U("a"), U("b")]).text
    assert text == "<bos><start_of_turn>user\na\n\nb<end_of_turn>\n<start_of_turn>model\n"


def test_system_role_is_kept_when_the_template_accepts_it():
    fmt = PromptFormatter(ALTERNATING_WITH_SYSTEM, bos_token="", eos_token="")
    assert not fmt.folds_system
    text = fmt.render([S("sys"), U("one"), U("two")]).text
    assert text == "[system]sys[user]one\n\ntwo[assistant]"


def test_strict_template_folds_system_explicitly():
    assert PromptFormatter(STRICT_TEMPLATE).folds_system


def test_a_template_that_still_fails_raises_a_clear_error():
    always_fails = "{{ raise_exception('This template needs tools') }}"
    fmt = PromptFormatter(always_fails, bos_token="", eos_token="")
    with pytest.raises(PromptFormatError, match="could not format the conversation: This "
                                                "template needs tools"):
        fmt.render([U("hi")])


def test_broken_jinja_is_a_clear_error_at_construction():
    with pytest.raises(PromptFormatError, match="chat template cannot be read"):
        PromptFormatter("{% for message in messages %}{{ message", "", "")


def test_special_tokens_can_be_set_after_compiling():
    fmt = PromptFormatter(STRICT_TEMPLATE)
    fmt.set_special_tokens("<s>", "</s>")
    assert fmt.render([U("x")]).text.startswith("<s><start_of_turn>user")


def test_plain_format_is_unchanged():
    fmt = PromptFormatter(None, "<s>", "</s>")
    prompt = fmt.render([S("sys"), U("hi")])
    assert prompt.text == "System: sys\nUser: hi\nAssistant:"
    assert not prompt.uses_template
    assert prompt.stop == PLAIN_STOPS
