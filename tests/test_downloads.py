"""The download manager and `hearth get` against the fake Hub, one test per fault."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fake_hub import FakeHub, Faults

from app.engine.hub.api import file_targets
from app.engine.hub.downloads import (
    DiskUsage,
    DownloadError,
    DownloadEvent,
    DownloadManager,
    part_path,
    target_path,
)
from app.engine.units import human_bytes

REPO = "tinyorg/Tiny-1B-GGUF"
BIG = "Tiny-1B-Q8_0.gguf"


def _manager(home: Path, events: list[DownloadEvent], **kwargs: object) -> DownloadManager:
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("chunk_size", 64 * 1024)
    return DownloadManager(home / "models", events.append, **kwargs)  # type: ignore[arg-type]


def _get(manager: DownloadManager, name: str = BIG) -> str:
    key = manager.add(file_targets(REPO, [name])[0])
    assert manager.wait([key], timeout=20)
    return key


def test_dropped_connection_resumes_and_verifies(fake_hub: FakeHub, hearth_home: Path,
                                                 tiny_gguf_bytes: dict[str, bytes]) -> None:
    fake_hub.faults[BIG] = Faults(drop_after=300_000, drops=2)
    done: list[Path] = []
    events: list[DownloadEvent] = []
    manager = _manager(hearth_home, events, on_complete=done.append)
    key = _get(manager)
    assert manager.status(key) == "done", events[-1].message
    dest = hearth_home / "models" / "tinyorg" / "Tiny-1B-GGUF" / BIG
    assert done == [dest] and not dest.with_name(BIG + ".part").exists()
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(
        tiny_gguf_bytes["big"]).digest()
    ranges = fake_hub.ranges(BIG)
    assert ranges[0] is None and ranges[1] == "bytes=300000-" and ranges[2] == "bytes=600000-"
    assert any(e.kind == "retrying" for e in events)
    progress = [e for e in events if e.kind == "progress"]
    assert progress and progress[-1].done == len(tiny_gguf_bytes["big"])


def test_wrong_bytes_rejected_and_part_removed(fake_hub: FakeHub, hearth_home: Path) -> None:
    fake_hub.faults[BIG] = Faults(wrong_bytes=True)
    events: list[DownloadEvent] = []
    manager = _manager(hearth_home, events)
    key = _get(manager)
    assert manager.status(key) == "failed"
    assert "sha256 does not match" in events[-1].message and "deleted" in events[-1].message
    folder = hearth_home / "models" / "tinyorg" / "Tiny-1B-GGUF"
    assert list(folder.iterdir()) == []


def test_gated_says_accept_licence_and_set_token(fake_hub: FakeHub, hearth_home: Path) -> None:
    events: list[DownloadEvent] = []
    manager = _manager(hearth_home, events, token="hf_should_not_leak")
    fake_hub.faults[BIG] = Faults(status=401)
    key = _get(manager)
    message = events[-1].message
    assert manager.status(key) == "failed"
    assert "accept its licence" in message and "token" in message
    assert "hf_should_not_leak" not in message


def test_404_and_500_then_success(fake_hub: FakeHub, hearth_home: Path) -> None:
    events: list[DownloadEvent] = []
    manager = _manager(hearth_home, events)
    fake_hub.faults[BIG] = Faults(status=404)
    key = _get(manager)
    assert manager.status(key) == "failed" and "not found" in events[-1].message
    fake_hub.faults[BIG] = Faults(status=500, status_times=2)
    key = _get(manager)
    assert manager.status(key) == "done"
    assert sum(e.kind == "retrying" for e in events) == 2


def test_500_forever_gives_up(fake_hub: FakeHub, hearth_home: Path) -> None:
    events: list[DownloadEvent] = []
    manager = _manager(hearth_home, events, retries=2)
    fake_hub.faults[BIG] = Faults(status=503)
    key = _get(manager)
    assert manager.status(key) == "failed" and "gave up after 2 retries" in events[-1].message


def test_disk_shortfall_refused_before_downloading(fake_hub: FakeHub, hearth_home: Path) -> None:
    events: list[DownloadEvent] = []
    manager = _manager(hearth_home, events, disk_usage=lambda _p: DiskUsage(10**9, 10**9, 1000))
    key = _get(manager)
    assert manager.status(key) == "failed" and "Not enough disk space" in events[-1].message
    assert f"has {human_bytes(1000)} free" in events[-1].message
    assert fake_hub.ranges(BIG) == []


@pytest.mark.parametrize("name", ["../escape.gguf", "a/../../b.gguf", "/etc/passwd"])
def test_path_escape_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(DownloadError, match="escape"):
        target_path(tmp_path, REPO, name)
    with pytest.raises(DownloadError, match="escape"):
        target_path(tmp_path, "../x", "ok.gguf")


def test_pause_resume_and_cancel(fake_hub: FakeHub, hearth_home: Path) -> None:
    fake_hub.faults[BIG] = Faults(throttle_bps=3_000_000)
    events: list[DownloadEvent] = []
    manager = _manager(hearth_home, events)
    key = manager.add(file_targets(REPO, [BIG])[0])
    deadline = time.monotonic() + 10
    while not any(e.kind == "progress" and e.done > 0 for e in events):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    manager.pause(key)
    assert manager.wait([key], timeout=10) and manager.status(key) == "paused"
    paused_at = events[-1].done
    assert paused_at > 0
    fake_hub.faults[BIG] = Faults()
    manager.resume(key)
    assert manager.wait([key], timeout=10) and manager.status(key) == "done"
    assert fake_hub.ranges(BIG)[-1] == f"bytes={paused_at}-"
    fake_hub.faults["Tiny-1B-F16.gguf"] = Faults(throttle_bps=50_000)
    small = manager.add(file_targets(REPO, ["Tiny-1B-F16.gguf"])[0])
    time.sleep(0.2)
    manager.cancel(small)
    assert manager.wait([small], timeout=10) and manager.status(small) == "cancelled"
    folder = hearth_home / "models" / "tinyorg" / "Tiny-1B-GGUF"
    assert sorted(p.name for p in folder.iterdir()) == [BIG]


def test_killed_cli_resumes_from_bytes_on_disk(fake_hub: FakeHub, hearth_home: Path) -> None:
    fake_hub.faults[BIG] = Faults(throttle_bps=1_500_000)
    env = {**os.environ, "HEARTH_HOME": str(hearth_home), "HF_ENDPOINT": fake_hub.url}
    command = [sys.executable, "-m", "app", "get", REPO, "--quant", "Q8_0"]
    part = hearth_home / "models" / "tinyorg" / "Tiny-1B-GGUF" / (BIG + ".part")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not (part.exists() and part.stat().st_size > 0):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = part.stat().st_size
    assert kept > 0
    fake_hub.faults[BIG] = Faults()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    resumed = fake_hub.ranges(BIG)[-1]
    assert resumed is not None and int(resumed.split("=")[1].rstrip("-")) >= kept > 0
    assert "Added" in result.stdout
    listed = subprocess.run([sys.executable, "-m", "app", "models"], env=env,
                            capture_output=True, text=True, timeout=30)
    assert BIG in listed.stdout


def _dest(home: Path, name: str = BIG) -> Path:
    return home / "models" / "tinyorg" / "Tiny-1B-GGUF" / name


def _wait_for(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_resume_from_server_that_ignores_range_starts_over(
        fake_hub: FakeHub, hearth_home: Path, tiny_gguf_bytes: dict[str, bytes]) -> None:
    # The first response is cut short; the resume asks for a Range, the server sends the whole
    # file with 200, and the download must start over (bytes and hash) rather than fail.
    fake_hub.faults[BIG] = Faults(drop_after=300_000, drops=1, ignore_range=True)
    events: list[DownloadEvent] = []
    manager = _manager(hearth_home, events)
    key = _get(manager)
    assert manager.status(key) == "done", events[-1].message
    assert fake_hub.ranges(BIG) == [None, "bytes=300000-"]
    assert _dest(hearth_home).read_bytes() == tiny_gguf_bytes["big"]
    assert not part_path(_dest(hearth_home)).exists()


def test_cancel_failed_download_removes_part_and_journal_row(
        fake_hub: FakeHub, hearth_home: Path, hearth_store: object) -> None:
    fake_hub.faults[BIG] = Faults(drop_after=300_000, drops=1)
    events: list[DownloadEvent] = []

    def on_event(event: DownloadEvent) -> None:
        events.append(event)
        if event.kind == "retrying":  # the resume after the drop finds the file gone
            fake_hub.faults[BIG] = Faults(status=404)

    manager = DownloadManager(hearth_home / "models", on_event, backoff=0.01,
                              journal=hearth_store)  # type: ignore[arg-type]
    key = _get(manager)
    part = part_path(_dest(hearth_home))
    assert manager.status(key) == "failed" and "not found" in events[-1].message
    assert part.stat().st_size == 300_000
    assert hearth_store.get_download(key) is not None  # type: ignore[attr-defined]
    manager.cancel(key)
    assert manager.wait([key], timeout=10) and manager.status(key) == "cancelled"
    assert events[-1].kind == "cancelled"
    assert not part.exists()
    assert hearth_store.get_download(key) is None  # type: ignore[attr-defined]


def test_already_downloaded_file_is_not_fetched_again(
        fake_hub: FakeHub, hearth_home: Path, tiny_gguf_bytes: dict[str, bytes]) -> None:
    _get(_manager(hearth_home, []))
    dest = _dest(hearth_home)
    fetched = len(fake_hub.ranges(BIG))
    before = dest.stat().st_mtime_ns
    events: list[DownloadEvent] = []
    completed: list[Path] = []
    manager = _manager(hearth_home, events, on_complete=completed.append)  # a relaunch
    key = _get(manager)
    assert manager.status(key) == "done"
    assert len(fake_hub.ranges(BIG)) == fetched  # no GET of the body
    assert events[0].kind == "queued" and events[-1].kind == "done"
    assert events[-1].path == str(dest) and events[-1].done == events[-1].total == dest.stat(
        ).st_size
    assert completed == [dest]  # registered in the library like a finished download
    assert dest.stat().st_mtime_ns == before and dest.read_bytes() == tiny_gguf_bytes["big"]


def test_job_resumed_while_its_thread_leaves_is_still_tracked(
        fake_hub: FakeHub, hearth_home: Path) -> None:
    # Resume between the old job's end (finished) and its thread leaving the active set: the
    # new job must be tracked, so close() pauses it and its thread is named for the leak check.
    fake_hub.faults[BIG] = Faults(status=404)
    events: list[DownloadEvent] = []
    manager = _manager(hearth_home, events)
    key = ""
    finish = manager._finish

    def finish_then_resume(job: object, status: str, *args: object, **kwargs: object) -> None:
        finish(job, status, *args, **kwargs)  # type: ignore[arg-type]
        if status == "failed":  # still on the old job's thread, before it leaves
            fake_hub.faults[BIG] = Faults(throttle_bps=500_000)
            manager.resume(key)

    manager._finish = finish_then_resume  # type: ignore[method-assign]
    key = manager.add(file_targets(REPO, [BIG])[0])
    _wait_for(lambda: any(e.kind == "progress" and e.done > 0 for e in events))
    assert any(t.name == f"hearth-download {key}" for t in threading.enumerate())
    manager.close()
    assert manager.status(key) == "paused"


def test_pause_twice_reports_once_and_listeners_may_call_back(
        fake_hub: FakeHub, hearth_home: Path) -> None:
    fake_hub.faults[BIG] = Faults(throttle_bps=500_000)
    events: list[DownloadEvent] = []
    small = "Tiny-1B-F16.gguf"

    def on_event(event: DownloadEvent) -> None:
        events.append(event)
        if event.kind == "paused" and event.key.endswith(small):
            manager.pause(event.key)  # re-entering the manager from its own event

    manager = DownloadManager(hearth_home / "models", on_event, max_parallel=1)
    big = manager.add(file_targets(REPO, [BIG])[0])
    queued = manager.add(file_targets(REPO, [small])[0])  # waits behind the big one
    stopper = threading.Thread(target=manager.pause, args=(queued,), daemon=True)
    stopper.start()
    stopper.join(5)
    assert not stopper.is_alive(), "a listener calling back into the manager deadlocked"
    assert manager.status(queued) == "paused"
    assert [e.kind for e in events if e.key == queued] == ["queued", "paused"]
    manager.pause(big)
    assert manager.wait([big], timeout=10) and manager.status(big) == "paused"
    manager.pause(big)
    assert [e.kind for e in events if e.key == big].count("paused") == 1
    manager.close()
