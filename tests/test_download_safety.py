"""Downloads that are really verified, and one writer per file across Hearth processes.

Against the fake Hub with real files: a second `hearth get` process, a real tmpfs that fills.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_hub import FakeHub, Faults
from test_downloads import BIG, _dest, _wait_for

from app.engine.hub.api import file_targets
from app.engine.hub.download_lock import lock_path
from app.engine.hub.download_verify import disk_full_message
from app.engine.hub.downloads import (
    BUSY_ELSEWHERE,
    DiskUsage,
    DownloadEvent,
    DownloadManager,
    part_path,
)
from app.engine.hub.part_origin import origin_path

REPO = "tinyorg/Tiny-1B-GGUF"

def _manager(home: Path, events: list[DownloadEvent], **kwargs: object) -> DownloadManager:
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("chunk_size", 64 * 1024)
    return DownloadManager(home / "models", events.append, **kwargs)  # type: ignore[arg-type]


def _get(manager: DownloadManager, name: str = BIG) -> str:
    key = manager.add(file_targets(REPO, [name])[0])
    assert manager.wait([key], timeout=20)
    return key


def _fail_after_drop(hub: FakeHub, events: list[DownloadEvent]) -> object:
    """An event listener that makes the resume after the first dropped connection find the file
    gone (404), so the job fails with 300,000 bytes in its part file."""
    hub.faults[BIG] = Faults(drop_after=300_000, drops=1)
    fired: list[bool] = []

    def on_event(event: DownloadEvent) -> None:
        events.append(event)
        if event.kind == "retrying" and not fired:
            fired.append(True)
            hub.faults[BIG] = Faults(status=404, status_times=1)

    return on_event


def _cli_get(hub: FakeHub, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "HEARTH_HOME": str(home), "HF_ENDPOINT": hub.url}
    return subprocess.Popen([sys.executable, "-m", "app", "get", REPO, "--quant", "Q8_0"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# -- sha256 of files already on disk ------------------------------------------------------------


def test_complete_file_with_wrong_bytes_is_downloaded_again(
        fake_hub: FakeHub, hearth_home: Path, tiny_gguf_bytes: dict[str, bytes]) -> None:
    good = tiny_gguf_bytes["big"]
    dest = _dest(hearth_home)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(bytes(len(good)))  # the right size, not the Hub's bytes
    events: list[DownloadEvent] = []
    key = _get(_manager(hearth_home, events))
    assert events[-1].kind == "done", events[-1].message
    assert any(e.kind == "verifying" for e in events)
    assert fake_hub.ranges(BIG) == [None]  # fetched, not taken on its size
    assert dest.read_bytes() == good and key.endswith(BIG)


def test_complete_file_is_verified_with_progress(
        fake_hub: FakeHub, hearth_home: Path, tiny_gguf_bytes: dict[str, bytes]) -> None:
    _get(_manager(hearth_home, []))
    events: list[DownloadEvent] = []
    _get(_manager(hearth_home, events))  # a relaunch asked for the same file
    verifying = [e for e in events if e.kind == "verifying"]
    size = len(tiny_gguf_bytes["big"])
    assert verifying and verifying[-1].done == verifying[-1].total == size
    assert [e.kind for e in events][-1] == "done" and len(fake_hub.ranges(BIG)) == 1


def test_resumed_part_is_rehashed_with_progress_then_continues(
        fake_hub: FakeHub, hearth_home: Path, hearth_store: object,
        tiny_gguf_bytes: dict[str, bytes]) -> None:
    first = DownloadManager(hearth_home / "models", _fail_after_drop(fake_hub, []),
                            backoff=0.01, journal=hearth_store)  # type: ignore[arg-type]
    key = _get(first)
    assert first.status(key) == "failed"
    events: list[DownloadEvent] = []
    second = _manager(hearth_home, events, journal=hearth_store)  # a relaunch: no hash in memory
    _get(second)
    verifying = [e for e in events if e.kind == "verifying"]
    assert verifying and verifying[-1].done == verifying[-1].total == 300_000
    assert fake_hub.ranges(BIG)[-1] == "bytes=300000-"
    assert _dest(hearth_home).read_bytes() == tiny_gguf_bytes["big"]


# -- files without a sha256 ----------------------------------------------------------------------


def _no_lfs(hub: FakeHub) -> None:
    hub.repos[REPO].no_lfs.add(BIG)
    assert file_targets(REPO, [BIG])[0].sha256 is None


def test_no_sha256_part_is_not_resumed_across_revisions(
        fake_hub: FakeHub, hearth_home: Path, hearth_store: object,
        tiny_gguf_bytes: dict[str, bytes]) -> None:
    _no_lfs(fake_hub)
    manager = DownloadManager(hearth_home / "models", _fail_after_drop(fake_hub, []),
                              backoff=0.01, journal=hearth_store)  # type: ignore[arg-type]
    key = _get(manager)
    assert manager.status(key) == "failed"
    assert origin_path(part_path(_dest(hearth_home))).exists()
    repo = fake_hub.repos[REPO]
    new = bytes(reversed(tiny_gguf_bytes["big"]))  # same size, new commit
    repo.files[BIG], repo.sha = new, "b" * 40
    events: list[DownloadEvent] = []
    _get(_manager(hearth_home, events, journal=hearth_store))
    assert events[-1].kind == "done", events[-1].message
    assert fake_hub.ranges(BIG)[-1] is None  # from zero, not from byte 300,000
    assert _dest(hearth_home).read_bytes() == new
    assert not origin_path(part_path(_dest(hearth_home))).exists()


def test_no_sha256_resume_with_new_etag_starts_over(
        fake_hub: FakeHub, hearth_home: Path, tiny_gguf_bytes: dict[str, bytes]) -> None:
    _no_lfs(fake_hub)
    events: list[DownloadEvent] = []
    manager = DownloadManager(hearth_home / "models", _fail_after_drop(fake_hub, events),
                              backoff=0.01)  # type: ignore[arg-type]
    key = _get(manager)
    assert manager.status(key) == "failed"
    new = bytes(reversed(tiny_gguf_bytes["big"]))  # changed under the same revision
    fake_hub.repos[REPO].files[BIG] = new
    manager.resume(key)
    assert manager.wait([key], timeout=20) and manager.status(key) == "done"
    assert any("changed on the Hub" in e.message for e in events if e.kind == "retrying")
    assert fake_hub.ranges(BIG)[-2:] == ["bytes=300000-", None]
    assert _dest(hearth_home).read_bytes() == new


# -- what the server answers and what reaches the disk -----------------------------------------


def test_partial_answer_for_another_range_is_refused(
        fake_hub: FakeHub, hearth_home: Path, tiny_gguf_bytes: dict[str, bytes]) -> None:
    fake_hub.faults[BIG] = Faults(drop_after=300_000, drops=1, wrong_range=1)
    events: list[DownloadEvent] = []
    manager = _manager(hearth_home, events)
    key = _get(manager)
    assert manager.status(key) == "done", events[-1].message
    refused = [e.message for e in events if e.kind == "retrying" and "wrong part" in e.message]
    assert refused and "bytes 0-" in refused[0] and "starting over" in refused[0]
    assert fake_hub.ranges(BIG) == [None, "bytes=300000-", None]
    assert _dest(hearth_home).read_bytes() == tiny_gguf_bytes["big"]


def test_file_is_flushed_to_disk_before_the_rename(
        fake_hub: FakeHub, hearth_home: Path, monkeypatch: pytest.MonkeyPatch,
        tiny_gguf_bytes: dict[str, bytes]) -> None:
    dest, real_fsync = _dest(hearth_home), os.fsync
    flushed: list[tuple[str, bool, int]] = []

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        flushed.append((target, dest.exists(), os.fstat(fd).st_size))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    _get(_manager(hearth_home, []))
    size = len(tiny_gguf_bytes["big"])
    assert (str(part_path(dest)), False, size) in flushed  # the whole part, under its .part name
    assert dest.read_bytes() == tiny_gguf_bytes["big"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    """A real 2 MiB filesystem (tmpfs; the tests run as root in this project's sandbox)."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], check=True)
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_disk_that_fills_pauses_with_what_to_free_then_resumes(
        fake_hub: FakeHub, small_disk: Path, tiny_gguf_bytes: dict[str, bytes]) -> None:
    events: list[DownloadEvent] = []
    # The check before downloading saw room (another program fills the disk meanwhile).
    manager = DownloadManager(small_disk / "models", events.append, backoff=0.01,
                              disk_usage=lambda _p: DiskUsage(10**12, 0, 10**12))
    key = manager.add(file_targets(REPO, [BIG])[0])
    assert manager.wait([key], timeout=20)
    assert manager.status(key) == "paused"
    dest = small_disk / "models" / "tinyorg" / "Tiny-1B-GGUF" / BIG
    on_disk = part_path(dest).stat().st_size
    size = len(tiny_gguf_bytes["big"])
    assert 0 < on_disk < size
    assert events[-1].message == disk_full_message(size - on_disk)
    assert events[-1].message.startswith("disk full: free ") and "then Resume" in events[-1].message
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    manager.resume(key)
    assert manager.wait([key], timeout=20) and manager.status(key) == "done"
    assert dest.read_bytes() == tiny_gguf_bytes["big"]


# -- one writer per part file across processes ----------------------------------------------------


def test_second_process_is_told_the_file_is_busy_then_resumes(
        fake_hub: FakeHub, hearth_home: Path, tiny_gguf_bytes: dict[str, bytes]) -> None:
    fake_hub.faults[BIG] = Faults(throttle_bps=1_500_000)
    part = part_path(_dest(hearth_home))
    cli = _cli_get(fake_hub, hearth_home)  # the other Hearth: `hearth get` of the same file
    _wait_for(lambda: part.exists() and part.stat().st_size > 0 or cli.poll() is not None,
              timeout=20)
    assert cli.poll() is None, cli.communicate()
    events: list[DownloadEvent] = []
    manager = _manager(hearth_home, events)
    key = _get(manager)
    assert manager.status(key) == "paused" and events[-1].message == BUSY_ELSEWHERE
    assert len(fake_hub.ranges(BIG)) == 1  # only the other process fetched
    manager.cancel(key)  # cancelling here must not delete the bytes the other one writes
    assert manager.wait([key], timeout=10) and manager.status(key) == "cancelled"
    assert part.exists() or _dest(hearth_home).exists()
    out, err = cli.communicate(timeout=30)
    assert cli.returncode == 0, err
    _get(manager)  # the file is complete now: checked, not fetched again
    assert manager.status(key) == "done" and events[-1].kind == "done"
    assert len(fake_hub.ranges(BIG)) == 1
    assert _dest(hearth_home).read_bytes() == tiny_gguf_bytes["big"]
    assert sorted(p.name for p in _dest(hearth_home).parent.iterdir()) == [BIG]  # no lock left


def test_hearth_get_says_busy_while_this_process_downloads(
        fake_hub: FakeHub, hearth_home: Path) -> None:
    fake_hub.faults[BIG] = Faults(throttle_bps=300_000)  # outlasts a slow `hearth get` start
    events: list[DownloadEvent] = []
    manager = _manager(hearth_home, events)
    key = manager.add(file_targets(REPO, [BIG])[0])
    _wait_for(lambda: any(e.kind == "progress" and e.done > 0 for e in events), timeout=20)
    assert lock_path(part_path(_dest(hearth_home))).exists()
    out, err = _cli_get(fake_hub, hearth_home).communicate(timeout=60)
    assert BUSY_ELSEWHERE in err and "Added" not in out
    manager.pause(key)
    assert manager.wait([key], timeout=10) and manager.status(key) == "paused"
    assert not lock_path(part_path(_dest(hearth_home))).exists()
