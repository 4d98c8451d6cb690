"""The `hearth` command: info, models, chat on a real tiny model, no-display message, --help."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import NO_DISPLAY_EXIT, main
from app.cli.terminal_text import terminal_safe
from app.engine.gguf.info import read_model_info
from app.models.store import Store

ROOT = Path(__file__).resolve().parents[1]


def _store(home: Path) -> Store:
    return Store.open(home / "hearth.db")


def test_info_prints_the_summary_and_json(tiny_model, capsys):
    assert main(["info", str(tiny_model)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny\n") and "Architecture:  llama" in out and "Quant:" in out
    assert main(["info", str(tiny_model), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["architecture"] == "llama" and data["path"] == str(tiny_model)


def test_info_on_a_garbage_file_is_a_message_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "notes.gguf"
    bad.write_text("just some text")
    assert main(["info", str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "is not a GGUF model file" in captured.err and "Traceback" not in captured.err


def test_models_lists_the_library(hearth_home, tiny_model, tiny_chat_model, capsys):
    assert main(["models"]) == 0
    assert "no models yet" in capsys.readouterr().out
    with _store(hearth_home) as store:
        for path in (tiny_model, tiny_chat_model):
            store.add_model_file(read_model_info(path))
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "QUANT", "SIZE", "PATH"]
    assert any(line.split()[:2] == ["tiny", "F32"] and line.endswith(str(tiny_model))
               for line in lines)
    assert any("tiny-chatml" in line and "F16" in line for line in lines)


def test_chat_prompt_streams_the_reply_and_stores_the_chat(hearth_home, tiny_model, capsys):
    code = main(["chat", str(tiny_model), "--prompt", "hello the model", "--max-tokens", "12",
                 "--temperature", "0", "--system", "be brief", "--ctx", "256"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    reply = captured.out.removesuffix("\n")
    assert reply and "12 tokens" in captured.err
    with _store(hearth_home) as store:
        [chat] = store.list_chats()
        messages = store.list_messages(chat.id)
    assert chat.title == "hello the model" and chat.system_prompt == "be brief"
    assert chat.model_path == str(tiny_model) and chat.sampling.max_tokens == 12
    assert [(m.role, m.status) for m in messages] == [("user", "complete"),
                                                      ("assistant", "complete")]
    # The terminal shows the stored reply with control characters made visible.
    assert terminal_safe(messages[1].content) == reply
    assert messages[1].stats.generated_tokens == 12


def test_chat_reads_turns_from_stdin_and_continues_a_saved_chat(
    hearth_home, tiny_model, capsys, monkeypatch
):
    with _store(hearth_home) as store:
        store.add_model_file(read_model_info(tiny_model))
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n\nthe world\n"))
    assert main(["chat", "tiny", "--max-tokens", "4", "--ctx", "256"]) == 0  # by library name
    with _store(hearth_home) as store:
        [chat] = store.list_chats()
        assert [m.role for m in store.list_messages(chat.id)] == ["user", "assistant"] * 2
    capsys.readouterr()

    monkeypatch.setattr(sys, "stdin", io.StringIO("one more\n"))
    assert main(["chat", "tiny", "--chat-id", str(chat.id), "--max-tokens", "4"]) == 0
    with _store(hearth_home) as store:
        contents = [m.content for m in store.list_messages(chat.id) if m.role == "user"]
        assert contents == ["hello", "the world", "one more"] and len(store.list_chats()) == 1


@pytest.mark.parametrize(
    "model, message",
    [("no-such-model", "No model in your library matches"), ("missing.gguf", "No such file")],
)
def test_chat_with_an_unknown_model_is_a_message(hearth_home, capsys, model, message):
    assert main(["chat", model, "--prompt", "hi"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_chat_with_an_unknown_chat_id_is_a_message(hearth_home, tiny_model, capsys):
    assert main(["chat", str(tiny_model), "--chat-id", "99", "--prompt", "hi"]) == 1
    assert "There is no chat 99" in capsys.readouterr().err


def test_without_a_display_the_window_explains_what_to_do(monkeypatch, capsys):
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert main([]) == NO_DISPLAY_EXIT == 2
    err = capsys.readouterr().err
    assert "xvfb-run -a hearth" in err and "hearth chat" in err and "Traceback" not in err


def test_no_display_from_a_real_process_exits_2_quickly(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(ROOT)
    env["HEARTH_HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "app"], env=env, capture_output=True,
                          text=True, timeout=60)
    if sys.platform.startswith("linux"):
        assert done.returncode == 2 and "xvfb-run -a hearth" in done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize("argv", [[], ["models"], ["info"], ["chat"]])
def test_every_command_has_help(argv, capsys):
    assert main([*argv, "--help"]) == 0
    assert "usage: hearth" in capsys.readouterr().out


def test_usage_errors_return_2(capsys):
    assert main(["info"]) == 2
    assert "FILE" in capsys.readouterr().err


def test_token_set_status_clear(hearth_home, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO("hf_cli_secret\n"))
    assert main(["token", "set"]) == 0
    assert (hearth_home / "hf_token").stat().st_mode & 0o777 == 0o600
    assert main(["token", "status"]) == 0
    assert main(["token", "clear"]) == 0
    assert main(["token", "status"]) == 0
    out = capsys.readouterr().out
    assert "Token: set" in out and out.rstrip().endswith("Token: not set")
    assert "hf_cli_secret" not in out


def test_quantize_adds_outputs_with_lineage_and_prints_the_report(
    hearth_home, quantizable_models, tmp_path, capsys
):
    source = quantizable_models["f16"]
    report_file = tmp_path / "report.csv"
    code = main(["quantize", str(source), "--type", "Q4_K_M", "--type", "q8_0", "--windows", "1",
                 "--report", str(report_file)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "TYPE" in captured.out and "CPU only" in captured.out  # predicted size and fit
    assert "| Q4_K_M | Q4_K_M |" in captured.out and "| F16 (source) |" in captured.out
    assert "tensor 21 of 21" in captured.err
    with _store(hearth_home) as store:
        outputs = [r for r in store.list_model_files() if r.source == "quantize"]
        assert sorted(r.file_type for r in outputs) == ["Q4_K_M", "Q8_0"]
        lineage = store.get_lineage(outputs[0].path)
        assert lineage is not None and lineage.source_path == str(source.resolve())
        assert store.latest_quality_report(source) is not None
    assert report_file.read_text().startswith("label,file_type,file_size")

    # Again: the outputs exist now, and the message says how to replace them.
    assert main(["quantize", str(source), "--type", "Q4_K_M", "--no-report"]) == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err
    # Quantizing an output again is requantizing: refused until the user says so.
    assert main(["quantize", outputs[0].path, "--type", "Q2_K", "--no-report"]) == 1
    err = capsys.readouterr().err
    assert "compounds the error" in err and "--allow-requantize" in err


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_text("hello"), "is not a GGUF model file"),
    (lambda p: None, "No such file"),
])
def test_quantize_bad_sources_are_messages(hearth_home, tmp_path, capsys, make, message):
    source = tmp_path / "model.gguf"
    make(source)
    assert main(["quantize", str(source), "--type", "Q4_K_M"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
