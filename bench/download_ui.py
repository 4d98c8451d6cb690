"""GUI responsiveness during downloads: the longest event-loop stall of the Discover page while
two 253 MB downloads run through its `DownloadBridge` (progress events, the Downloads panel,
sha256 verification and library registration at the end).

The fake Hub runs in its own process, throttled so each download lasts several seconds. A 2 ms
heartbeat timer on the GUI thread measures the worst gap beyond its interval; the same heartbeat
on the idle page, in the same run, is the baseline. Floor: stall ≤ 50 ms.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, verdict
from ui_stall import Heartbeat

# 40 MB/s each: two 253 MB files take about 6 s, long enough for many progress updates.
THROTTLE_BPS = int(os.environ.get("HEARTH_BENCH_THROTTLE", str(40_000_000)))
TIMEOUT_S = 120


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="hearth-bench-dlui-"))
    os.environ["HEARTH_HOME"] = str(home)  # before anything reads the data paths
    os.environ.pop("HF_HUB_OFFLINE", None)
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "_hub_server.py"), "--copies", "2",
         "--throttle", str(THROTTLE_BPS)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        os.environ["HF_ENDPOINT"] = server.stdout.readline().strip()
        return _measure(home)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def _measure(home: Path) -> int:
    from _hub_server import FILES, REPO
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.engine.paths import data_paths
    from app.models.store import Store
    from app.ui.discover.page import DiscoverPage

    _app = QApplication.instance() or QApplication([])
    paths = data_paths()
    store = Store.open(home / "hearth.db")
    page = DiscoverPage(store, Path(paths.models))
    page.resize(1280, 800)
    page.show()
    loop = QEventLoop()

    def spin(seconds: float) -> None:
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    spin(0.5)  # first paint
    beat = Heartbeat()
    beat.start()
    spin(2.0)
    idle = beat.stop()

    finished: list[str] = []
    failures: list[str] = []
    page.downloads.completed.connect(lambda path: (finished.append(path), loop.quit()))
    page.downloads.event.connect(
        lambda e: (failures.append(e.message), loop.quit()) if e.kind == "failed" else None)
    beat.start()
    started = time.perf_counter()
    # Two separate requests, as two clicks on two files would make.
    page.download(REPO, [FILES[0]])
    page.download(REPO, [FILES[1]])
    deadline = started + TIMEOUT_S
    while len(finished) < 2 and not failures and time.perf_counter() < deadline:
        QTimer.singleShot(1000, loop.quit)  # wake up to check the deadline
        loop.exec()
    elapsed = time.perf_counter() - started
    during = beat.stop()
    page.shutdown()
    store.close()
    if failures or len(finished) < 2:
        print(f"downloads did not finish: {failures or 'timed out'}")
        return 1
    size = sum(Path(p).stat().st_size for p in finished)
    print(f"idle heartbeat worst gap {idle:.1f} ms (baseline)")
    print(f"two downloads, {size / 1e6:.0f} MB in {elapsed:.1f} s "
          f"({size / elapsed / 1e6:.0f} MB/s together): worst stall {during:.1f} ms "
          f"({during / max(idle, 0.1):.1f}× idle)")
    return verdict("download_ui_stall_ms", during, 50, higher_is_better=False)


if __name__ == "__main__":
    raise SystemExit(main())
