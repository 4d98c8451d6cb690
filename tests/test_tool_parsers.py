"""Tool calls read out of replies as they stream, for every template family (issue 12): calls
come out whole and once, markup never reaches the visible text, reasoning is never parsed, and
broken calls stay visible."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from app.engine.tools import (
    FAMILIES,
    ContentDelta,
    ToolCallArgs,
    ToolCallBegin,
    ToolCallStream,
    ToolEvent,
    detect_family,
    parse_reply,
)

DATA = Path(__file__).parent / "data" / "tool_outputs"
TEMPLATES = Path(__file__).parent / "data" / "templates"
MARKUP = ["<tool_call>", "</tool_call>", "<|python_tag|>", "[TOOL_CALLS]", "[ARGS]",
          "[CALL_ID]", "<|tool_call|>", "<|/tool_call|>", "<｜tool▁calls▁begin｜>",
          "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜tool▁call▁end｜>", "<｜tool▁calls▁end｜>"]

CASES = [(family, case) for family in FAMILIES
         for case in json.loads((DATA / f"{family}.json").read_text(encoding="utf-8"))]
IDS = [f"{family}: {case['name']}" for family, case in CASES]


def _run(family: str, pieces: list[str], starts_in_thinking: bool = False
         ) -> list[ToolEvent]:
    stream = ToolCallStream(family, starts_in_thinking=starts_in_thinking)
    events: list[ToolEvent] = []
    for piece in pieces:
        events += stream.feed(piece)
    return events + stream.finish()


def _summary(events: list[ToolEvent]) -> tuple[str, list[dict[str, object]]]:
    """The visible text and the calls, checking the events' order on the way."""
    content = ""
    calls: dict[int, dict[str, object]] = {}
    for event in events:
        if isinstance(event, ContentDelta):
            assert event.text, "a content delta is never empty"
            content += event.text
        elif isinstance(event, ToolCallBegin):
            assert event.index == len(calls), "calls are numbered in order"
            assert event.id, "ids are never empty"
            calls[event.index] = {"id": event.id, "name": event.name, "arguments": ""}
        else:
            assert isinstance(event, ToolCallArgs)
            assert event.index in calls, "arguments come after their call's name"
            calls[event.index]["arguments"] += event.fragment  # type: ignore[operator]
    return content, list(calls.values())


def _check(case: dict, events: list[ToolEvent]) -> None:
    content, calls = _summary(events)
    assert content == case["content"]
    assert [c["name"] for c in calls] == [c["name"] for c in case["calls"]]
    for got, want in zip(calls, case["calls"], strict=True):
        assert json.loads(got["arguments"]) == want["arguments"]  # type: ignore[arg-type]
        if "id" in want:
            assert got["id"] == want["id"]
    if "<think>" not in case["output"] and not case.get("starts_in_thinking"):
        for marker in MARKUP:
            assert marker not in content


@pytest.mark.parametrize(("family", "case"), CASES, ids=IDS)
def test_recorded_replies_in_one_piece(family: str, case: dict) -> None:
    _check(case, _run(family, [case["output"]], case.get("starts_in_thinking", False)))


@pytest.mark.parametrize(("family", "case"), CASES, ids=IDS)
def test_recorded_replies_character_by_character(family: str, case: dict) -> None:
    _check(case, _run(family, list(case["output"]), case.get("starts_in_thinking", False)))


@pytest.mark.parametrize(("family", "case"), CASES, ids=IDS)
def test_recorded_replies_in_random_chunks(family: str, case: dict) -> None:
    rng = random.Random(1234)
    text = case["output"]
    for _ in range(15):
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(1, 8))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        _check(case, _run(family, pieces, case.get("starts_in_thinking", False)))


@pytest.mark.parametrize("family", ["hermes", "mistral", "granite", "deepseek"])
def test_a_marker_split_at_every_pair_of_pieces(family: str) -> None:
    """Every way of cutting the reply in two (so every cut through every marker)."""
    cases = [c for f, c in CASES if f == family and c["calls"]]
    for case in cases:
        text = case["output"]
        for cut in range(1, len(text)):
            _check(case, _run(family, [text[:cut], text[cut:]],
                              case.get("starts_in_thinking", False)))


def test_text_before_a_marker_streams_at_once_and_only_a_possible_marker_waits() -> None:
    stream = ToolCallStream("hermes")
    assert stream.feed("The answer is <") == [ContentDelta("The answer is")]
    assert stream.feed("b>bold") == [ContentDelta(" <b>bold")]
    assert stream.feed(" <tool_") == []
    begin = stream.feed('call>{"name": "f", "arguments": {}}</tool_call>')
    assert [type(e) for e in begin] == [ToolCallBegin, ToolCallArgs]
    assert stream.finish() == []
    assert stream.content == "The answer is <b>bold"
    assert [c.name for c in stream.calls] == ["f"]


def test_a_call_is_announced_with_its_name_before_its_arguments() -> None:
    events = _run("mistral", ['[TOOL_CALLS]get_weather[CALL_ID]abcdefghi[ARGS]{"city": "Oslo"}'])
    assert events == [ToolCallBegin(0, "abcdefghi", "get_weather"),
                      ToolCallArgs(0, '{"city": "Oslo"}')]


def test_ids_are_made_up_when_the_model_gives_none_and_are_unique() -> None:
    _, calls = parse_reply("hermes", '<tool_call>{"name": "a", "arguments": {}}</tool_call>'
                                     '<tool_call>{"name": "b", "arguments": {}}</tool_call>')
    assert all(c.id.startswith("call_") and len(c.id) > 10 for c in calls)
    assert calls[0].id != calls[1].id


def test_fake_calls_inside_reasoning_stay_reasoning_in_every_family() -> None:
    fakes = ['<tool_call>{"name": "wipe", "arguments": {}}</tool_call>',
             '{"name": "wipe", "parameters": {}}',
             '[TOOL_CALLS][{"name": "wipe", "arguments": {}}]',
             '<|tool_call|>[{"name": "wipe", "arguments": {}}]',
             '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>wipe<｜tool▁sep｜>{}<｜tool▁call▁end｜>',
             '{"tool_calls": [{"name": "wipe", "arguments": {}}]}']
    for family in FAMILIES:
        for fake in fakes:
            reply = f"<think>{fake}</think>Nothing to do."
            for pieces in ([reply], list(reply)):
                content, calls = _summary(_run(family, pieces))
                assert calls == [] and content == reply
            opened = f"{fake}\n</think>\nDone."
            content, calls = _summary(_run(family, list(opened), starts_in_thinking=True))
            assert calls == [] and content == opened


def test_an_endless_call_is_shown_as_text_rather_than_held_forever() -> None:
    stream = ToolCallStream("hermes", max_call_chars=100)
    events = stream.feed('<tool_call>{"name": "f", "arguments": {"x": "' + "a" * 200)
    content, calls = _summary(events)
    assert calls == [] and "a" * 100 in content and "<tool_call>" not in content


@pytest.mark.parametrize(("family", "before", "after"), [
    ("granite", '<|tool_call|>[{"name": "write", "arguments": ', "}]"),
    ("hermes", '<tool_call>{"name": "write", "arguments": ', "}</tool_call>"),
])
def test_long_arguments_streamed_in_small_pieces_take_linear_time(
    family: str, before: str, after: str,
) -> None:
    import time

    body = json.dumps({"text": "word " * 40_000})
    reply = before + body + after
    start = time.perf_counter()
    _, calls = _summary(_run(family, [reply[i:i + 4] for i in range(0, len(reply), 4)]))
    assert time.perf_counter() - start < 5
    assert json.loads(calls[0]["arguments"]) == json.loads(body)  # type: ignore[arg-type]


def test_builtin_call_syntax_is_read_never_evaluated() -> None:
    reply = '<|python_tag|>os.call(cmd=__import__("os").system("x"))'
    content, calls = parse_reply("llama3", reply)
    assert calls == [] and "__import__" in content


@pytest.mark.parametrize(("template", "family"), [
    ("Qwen-Qwen2.5-7B-Instruct.jinja", "hermes"),
    ("Qwen-Qwen3-0.6B.jinja", "hermes"),
    ("NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", "hermes"),
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "llama3"),
    ("meta-llama-Llama-3.2-3B-Instruct.jinja", "llama3"),
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", "mistral"),
    ("ibm-granite-granite-3.3-2B-Instruct.jinja", "granite"),
    ("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", "deepseek"),
    ("deepseek-ai-DeepSeek-V3.1.jinja", "deepseek"),
    ("google-gemma-2-2b-it.jinja", "generic"),
])
def test_family_is_told_from_published_templates(template: str, family: str) -> None:
    assert detect_family((TEMPLATES / template).read_text(encoding="utf-8")) == family


def test_no_template_is_the_generic_family() -> None:
    assert detect_family(None) == "generic"
    assert detect_family("{{ messages }}", "gemma3") == "generic"
