"""`hearth serve` as a user runs it: a real process, a real port, Ctrl+C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import openai

STARTUP_S = 60


def _serve(home, *args: str) -> subprocess.Popen:
    env = {**os.environ, "HEARTH_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("HEARTH_API_KEY", None)
    return subprocess.Popen([sys.executable, "-m", "app", "serve", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_serve_preloads_a_model_prints_the_url_and_stops_on_ctrl_c(hearth_home,
                                                                   tiny_chat_model):
    process = _serve(hearth_home, "--port", "0", "--model", str(tiny_chat_model))
    try:
        line = process.stdout.readline()  # the first stdout line is the URL, once serving
        found = re.search(r"(http://127\.0\.0\.1:\d+)/v1", line)
        assert found, line + process.stderr.read()
        client = openai.OpenAI(base_url=f"{found.group(1)}/v1", api_key="x", max_retries=0)
        model_id = tiny_chat_model.name.removesuffix(".gguf")
        assert model_id in [m.id for m in client.models.list().data]
        reply = client.chat.completions.create(
            model=model_id, max_tokens=2, messages=[{"role": "user", "content": "hi"}])
        assert reply.usage.completion_tokens >= 1
        client.close()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "Stopping" in process.stderr.read()
    finally:
        process.kill()
        process.wait()


def test_a_busy_port_is_a_clear_message_and_a_failure(hearth_home):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        process = _serve(hearth_home, "--port", str(port))
        started = time.monotonic()
        out, err = process.communicate(timeout=STARTUP_S)
    assert process.returncode == 1
    assert f"Port {port} is already in use" in err
    assert "Traceback" not in err and out == ""
    assert time.monotonic() - started < STARTUP_S


def test_the_network_without_a_key_is_refused(hearth_home):
    process = _serve(hearth_home, "--network", "--port", "0")
    _out, err = process.communicate(timeout=STARTUP_S)
    assert process.returncode == 1
    assert "needs an API key" in err
