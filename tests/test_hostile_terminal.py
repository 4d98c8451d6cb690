"""`hearth chat` writes model text to the terminal with every escape sequence and control
character neutralised, also when a sequence is split across streamed tokens."""

from __future__ import annotations

import re
import time
from pathlib import Path

from hostile_inputs import HOSTILE, TIME_BUDGET_S

from app.cli import main
from app.cli.terminal_text import TerminalText, terminal_safe
from app.models.store import Store
from app.testing.tiny_gguf import build_tiny_model

# What a terminal would act on: C0 but newline and tab, DEL, C1, and bidirectional overrides.
ACTIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u202a-\u202e\u2066-\u2069]")
ESCAPES = ("A\x1b]0;retitled\x07B\x1b]52;c;aGVsbG8=\x1b\\C\x1b[2J\x1b[HD\x1b[8mE\x9b31mF"
           "\x1bP+q544e\x1b\\G\x1b(0H\r\x1b[KI\x1b]8;;https://evil.example\x07J\x1b]8;;\x07K")


def test_every_hostile_string_prints_inert_streamed_in_pieces():
    for name, text in HOSTILE.items():
        started = time.monotonic()
        screen = TerminalText()
        shown = "".join(screen.feed(text[i:i + 7]) for i in range(0, len(text), 7))
        shown += screen.flush()
        assert time.monotonic() - started < TIME_BUDGET_S, name
        assert not ACTIVE.search(shown), name
        assert shown == terminal_safe(text), name


def test_sequences_are_dropped_and_the_text_around_them_kept():
    assert terminal_safe(ESCAPES) == "ABCDEFGHIJK"
    assert terminal_safe("bell\x07 nul\x00 del\x7f tab\tnew\nline") == (
        "bell␇ nul␀ del␡ tab\tnew\nline")
    assert terminal_safe("\u202egpj.exe") == "\ufffdgpj.exe"


def test_a_sequence_split_across_tokens_is_still_neutralised():
    whole = terminal_safe(ESCAPES)
    for cut in range(1, len(ESCAPES)):
        screen = TerminalText()
        assert screen.feed(ESCAPES[:cut]) + screen.feed(ESCAPES[cut:]) + screen.flush() == whole
    screen = TerminalText()
    pieces = [screen.feed(char) for char in ESCAPES]
    assert "".join(pieces) + screen.flush() == whole
    assert not any("\x1b" in piece for piece in pieces)


def test_an_unterminated_sequence_cannot_hide_what_follows():
    shown = terminal_safe("\x1b]0;" + "x" * 10_000 + " the rest of the answer")
    assert shown.startswith("␛]0;x") and shown.endswith("the rest of the answer")
    screen = TerminalText()
    assert screen.feed("answer \x1b[") == "answer "  # held: it may be a colour
    assert screen.flush() == "␛["  # the reply ended: shown, not lost


def test_hearth_chat_streams_a_hostile_reply_inert(hearth_home: Path, tmp_path: Path, capsys):
    """A real model whose vocabulary is escape-sequence fragments, sampled hot: the reply stored
    holds the raw escapes, the terminal gets none of them."""
    pieces = ["\x1b]0;pwned\x07", "\x1b]52;c;aGk=\x07", "\x1b[2J\x1b[H", "\x1b[8mhidden",
              "\x9b31m", "\x1bP+q\x1b\\", "\r\x1b[K", "\u202eevil"]
    model = build_tiny_model(tmp_path / "hostile.gguf", vocab_extra_words=pieces, seed=3)
    code = main(["chat", str(model), "--prompt", "hello", "--max-tokens", "200",
                 "--temperature", "1.5", "--seed", "7", "--ctx", "512"])
    out = capsys.readouterr().out
    assert code == 0
    store = Store.open(hearth_home / "hearth.db")
    try:
        [chat] = store.list_chats()
        reply = store.list_messages(chat.id)[-1].content
    finally:
        store.close()
    assert ACTIVE.search(reply), "the model did write control characters"
    assert not ACTIVE.search(out)
    assert out == terminal_safe(reply) + "\n"  # streamed token by token, same as all at once


def test_hearth_search_prints_hub_text_inert(fake_hub, capsys):
    from fake_hub import FakeRepo

    fake_hub.add_repo(FakeRepo("evilorg/Evil-GGUF", {"evil.gguf": b"GGUF"},
                               tags=["gguf", "license:\x1b]52;c;aGVsbG8=\x07mit\x1b[8m"]))
    assert main(["search", "evil"]) == 0
    out = capsys.readouterr().out
    assert "evilorg/Evil-GGUF" in out and "mit" in out
    assert not ACTIVE.search(out)
