"""Fitting a conversation into the context window, and stop strings in streamed text."""

from __future__ import annotations

import pytest

from app.engine.inference.context_window import ContextOverflow, fit_conversation
from app.engine.inference.stop_text import StopTextStream
from app.engine.types import ChatMessage


def words(messages):
    return [w for m in messages for w in m.content.split()]


def convo(turns: int) -> list[ChatMessage]:
    out = [ChatMessage("system", "sys sys")]
    for i in range(turns):
        out += [ChatMessage("user", f"u{i} " * 5), ChatMessage("assistant", f"a{i} " * 5)]
    return out + [ChatMessage("user", "last question")]


def test_a_conversation_that_fits_is_untouched():
    fitted = fit_conversation(convo(2), words, n_ctx=100, reserve=10, policy="stop")
    assert fitted.dropped == 0 and len(fitted.messages) == 6


def test_truncate_keeps_the_system_prompt_and_the_newest_turns():
    fitted = fit_conversation(convo(10), words, n_ctx=40, reserve=10, policy="truncate_oldest")
    assert fitted.messages[0] == ChatMessage("system", "sys sys")
    assert fitted.messages[-1].content == "last question"
    assert fitted.messages[1].role == "user"  # never starts on an assistant turn
    assert len(fitted.tokens) <= 30 and fitted.dropped > 0
    # As few turns as possible are dropped: one more turn would not fit.
    assert len(words([*fitted.messages[:1], *convo(10)[-len(fitted.messages) - 1:]])) > 30


def test_stop_policy_raises_with_the_numbers():
    with pytest.raises(ContextOverflow, match="40"):
        fit_conversation(convo(10), words, n_ctx=40, reserve=10, policy="stop")


def test_a_single_message_too_long_for_the_window_is_refused():
    huge = [ChatMessage("user", "w " * 100)]
    with pytest.raises(ContextOverflow, match="longer"):
        fit_conversation(huge, words, n_ctx=40, reserve=10, policy="truncate_oldest")


def test_stop_string_is_cut_and_never_shown_even_across_tokens():
    s = StopTextStream(["\nUser:"])
    shown = "".join(s.feed(p) for p in [b"Hello", b" there", b"\nUs", b"er:", b" more"])
    assert shown == "Hello there" and s.stopped


def test_held_back_text_is_released_when_no_stop_follows():
    s = StopTextStream(["\nUser:"])
    shown = s.feed(b"a\nUs") + s.feed(b"ually")
    assert shown == "a\nUsually"


def test_multibyte_characters_split_across_tokens_are_joined():
    s = StopTextStream([])
    data = "héllo ✓".encode()
    shown = "".join(s.feed(data[i:i + 1]) for i in range(len(data))) + s.flush()
    assert shown == "héllo ✓"
