"""Chat templates are untrusted code: rendering is bounded in time and memory, and Cancel stops
a load or a reply stuck in a template while the window stays responsive (issue 9)."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from app.engine.gguf.info import read_model_info
from app.engine.inference.events import Done, Failed, Loaded, PromptInfo
from app.engine.inference.prompt_format import PromptFormatError, PromptFormatter
from app.engine.inference.template_sandbox import TemplateFailure, TemplateSandbox
from app.engine.serving.host import EngineHost
from app.engine.types import ChatMessage, LoadSettings, Sampling
from app.testing.tiny_gguf import CHATML_TEMPLATE, build_tiny_model
from app.ui.bridge import EngineBridge
from app.ui.chat.model_picker import ModelPicker

# Ten billion loop steps: "forever" for any test run; range() alone is capped by the sandbox.
LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
# Doubles a string forty times: a terabyte, unless memory is capped.
DOUBLING = ("{% set ns = namespace(s='x') %}{% for i in range(40) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}")
USER = [ChatMessage("user", "hi")]


def test_a_template_that_loops_forever_gets_a_clear_error_in_seconds() -> None:
    started = time.monotonic()
    with pytest.raises(PromptFormatError, match=r"chat template took longer than 2 s"):
        PromptFormatter(LOOP)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("template", [DOUBLING, "{{ 'x' * 3000000000 }}"])
def test_a_template_building_a_huge_string_gets_a_clear_error(template: str) -> None:
    started = time.monotonic()
    with pytest.raises(PromptFormatError, match=r"used more than 512 MB of memory"):
        PromptFormatter(template)
    assert time.monotonic() - started < 5


def test_a_prompt_too_long_for_any_context_is_refused() -> None:
    with pytest.raises(PromptFormatError, match=r"wrote a prompt of more than 8,388,608"):
        PromptFormatter("{{ 'x' * 20000000 }}")


def test_the_sandbox_recovers_after_a_breach_and_stops_with_close() -> None:
    sandbox = TemplateSandbox(deadline_s=0.5)
    try:
        with pytest.raises(TemplateFailure) as failure:
            sandbox.render(LOOP, [])
        assert failure.value.kind == "time"
        # A fresh process answers the next render.
        prompt = sandbox.render(CHATML_TEMPLATE, [{"role": "user", "content": "hi"}])
        assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        pid = sandbox.pid
        assert pid is not None and psutil.pid_exists(pid)
    finally:
        sandbox.close()
    assert not psutil.pid_exists(pid)


def test_a_sandbox_process_that_died_is_replaced_on_the_next_render() -> None:
    sandbox = TemplateSandbox()
    user = [{"role": "user", "content": "hi"}]
    try:
        first = sandbox.render(CHATML_TEMPLATE, user)
        pid = sandbox.pid
        assert pid is not None
        psutil.Process(pid).kill()
        psutil.Process(pid).wait(timeout=5)
        assert sandbox.render(CHATML_TEMPLATE, user) == first
        assert sandbox.pid not in (None, pid)
    finally:
        sandbox.close()


def test_cancel_stops_a_render_at_once() -> None:
    sandbox = TemplateSandbox(deadline_s=30)
    started = time.monotonic()
    try:
        with pytest.raises(TemplateFailure) as failure:
            sandbox.render(LOOP, [], cancelled=lambda: time.monotonic() - started > 0.3)
    finally:
        sandbox.close()
    assert failure.value.kind == "cancelled"
    assert time.monotonic() - started < 1.5


@pytest.fixture(scope="module")
def looping_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("loop") / "looping.gguf",
                            chat_template=LOOP, name="looping")


def test_cancelling_a_load_stuck_in_the_template_check_is_prompt_and_the_gui_keeps_running(
    qtbot, hearth_store, looping_model: Path
) -> None:
    from PySide6.QtCore import QTimer

    hearth_store.add_model_file(read_model_info(looping_model), "import")
    bridge = EngineBridge()
    picker = ModelPicker(hearth_store, bridge)
    qtbot.addWidget(picker)
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(10)
    try:
        assert picker.load_model(str(looping_model)) is not None
        assert picker.load_button.text() == "Cancel"
        qtbot.wait(400)  # the template check is running in its sandbox now
        with qtbot.waitSignal(picker.loadFailed, timeout=5_000) as failed:
            cancelled_at = time.monotonic()
            picker.load_button.click()
        assert time.monotonic() - cancelled_at < 1.0  # not the 2 s deadline: the Cancel
        assert failed.args == ["Loading was cancelled."]
        assert picker.load_button.text() == "Load"
        assert bridge.loaded_path is None
        # The GUI thread never waited: its timer kept ticking all along.
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        assert len(ticks) > 20 and max(gaps) < 0.5
    finally:
        timer.stop()
        bridge.shutdown()


def test_stop_during_a_reply_stuck_in_the_template_ends_the_reply(tmp_path: Path) -> None:
    # Fine for a short chat (so the model loads), endless once the conversation grows.
    template = "{% if messages | length > 2 %}" + LOOP + "{% endif %}" + CHATML_TEMPLATE
    model = build_tiny_model(tmp_path / "late-loop.gguf", chat_template=template)
    events: list[object] = []
    host = EngineHost(events.append)
    try:
        host.load(model, LoadSettings(n_ctx=256))
        _wait(lambda: any(isinstance(e, Loaded | Failed) for e in events))
        assert isinstance(events[-1], Loaded)
        long_chat = [ChatMessage("user", "a"), ChatMessage("assistant", "b"),
                     ChatMessage("user", "c")]
        job = host.chat(long_chat, Sampling(max_tokens=4))
        time.sleep(0.4)
        cancelled_at = time.monotonic()
        host.cancel(job)
        _wait(lambda: any(getattr(e, "job_id", None) == job and isinstance(e, Done | Failed)
                          for e in events))
        assert time.monotonic() - cancelled_at < 1.0
        ends = [e for e in events if getattr(e, "job_id", None) == job]
        assert not any(isinstance(e, PromptInfo) for e in ends)
        assert isinstance(ends[-1], Done) and ends[-1].stats.stop_reason == "cancelled"
        # Without a Stop, the same conversation fails with the template's clear error.
        job = host.chat(long_chat, Sampling(max_tokens=4))
        _wait(lambda: any(getattr(e, "job_id", None) == job and isinstance(e, Done | Failed)
                          for e in events), timeout=6)
        failed = events[-1]
        assert isinstance(failed, Failed) and "took longer than 2 s" in failed.message
    finally:
        host.shutdown()


def _wait(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
