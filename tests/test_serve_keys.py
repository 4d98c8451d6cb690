"""`hearth serve` asks clients for the API keys saved on the window's Developer page."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import httpx

from app.cli.command_line import main
from app.services.api_keys import save_keys

STARTUP_S = 60


def _serve(home, *args: str) -> subprocess.Popen:
    env = {**os.environ, "HEARTH_HOME": str(home), "PYTHONUNBUFFERED": "1",
           # No OS keyring here: the keys are in the data folder's 0600 file, as on headless CI.
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    env.pop("HEARTH_API_KEY", None)
    return subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", "0", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _url(process: subprocess.Popen) -> str:
    line = process.stdout.readline()  # the first stdout line is the URL, once serving
    found = re.search(r"(http://127\.0\.0\.1:\d+)/v1", line)
    assert found, line + process.stderr.read()
    return found.group(1)


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    return process.stderr.read()


def test_on_the_network_serve_asks_for_a_saved_key(hearth_home):
    save_keys(["hearth-saved-one", "hearth-saved-two"], hearth_home)
    process = _serve(hearth_home, "--network", "--api-key", "from-the-command-line")
    try:
        url = _url(process)
        assert httpx.get(f"{url}/v1/models").status_code == 401
        wrong = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        for key in ("hearth-saved-one", "hearth-saved-two", "from-the-command-line"):
            ok = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"})
            assert ok.status_code == 200
        err = _stop(process)
        assert "one of the 2 key(s) saved on Hearth's Developer page" in err
        assert "or the one given with --api-key" in err
        assert "hearth-saved" not in err and "from-the" not in err  # secrets: never printed
    finally:
        process.kill()
        process.wait()


def test_the_windows_require_a_key_setting_holds_for_serve_too(hearth_home, hearth_store):
    save_keys(["hearth-saved"], hearth_home)
    hearth_store.set_setting("server.require_key", True)  # "Require a key on this computer too"
    process = _serve(hearth_home)  # on this machine only, no key given: the setting asks
    try:
        url = _url(process)
        assert httpx.get(f"{url}/v1/models").status_code == 401
        ok = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer hearth-saved"})
        assert ok.status_code == 200
        assert "one of the 1 key(s) saved" in _stop(process)
    finally:
        process.kill()
        process.wait()


def test_no_saved_key_is_a_clear_refusal(hearth_home, capsys):
    assert main(["serve", "--network", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "needs an API key, and none is saved" in err
    assert "Developer page" in err and "--api-key" in err
    assert main(["serve", "--require-key", "--port", "0"]) == 1
    assert "--require-key needs an API key" in capsys.readouterr().err


def test_unreadable_saved_keys_are_named_not_ignored(hearth_home, capsys):
    (hearth_home / "server_api_keys.json").write_text("{not json", encoding="utf-8")
    assert main(["serve", "--network", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "the API keys saved by Hearth could not be read" in err and "damaged" in err
    assert "Pass --api-key KEY" in err and "Traceback" not in err
