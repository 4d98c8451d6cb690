"""GUI responsiveness while documents are indexed in the window (issue 13): the longest
event-loop stall while the Chat page's Documents panel indexes a folder of bundled text with the
starter embedding model, progress bar and all.

A 2 ms heartbeat timer runs on the GUI thread (the same `Heartbeat` as bench/ui_stall.py); the
stall is the longest gap between two beats beyond the interval. The same heartbeat on the idle
window, in the same run, is printed as the baseline. Floor: ≤ 50 ms.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from _common import ROOT, verdict
from ui_stall import Heartbeat

FLOOR_MS = 50.0
COPIES = 12  # the bundled samples, copied this many times: some hundreds of chunks


def main() -> int:
    import os

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    home = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    os.environ["HEARTH_HOME"] = str(home)

    from app.models.store import Store
    from app.ui.bridge import EngineBridge
    from app.ui.chat.page import ChatPage

    qapp = QApplication.instance() or QApplication([])
    folder = home / "documents"
    folder.mkdir()
    samples = sorted((ROOT / "resources" / "samples").glob("*.[mt][dx]*"))
    for n in range(COPIES):
        for sample in samples:
            shutil.copy(sample, folder / f"{sample.stem}-{n}{sample.suffix}")
    store = Store.open(home / "hearth.db")
    bridge = EngineBridge()
    page = ChatPage(store, bridge)
    page.resize(1200, 800)
    page.show()
    loop = QEventLoop()
    beat = Heartbeat()

    def spin(seconds: float) -> None:
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    spin(0.5)
    beat.start()
    spin(2.0)
    idle = beat.stop()

    panel = page.documents_panel
    # The first collection converts the starter embedding model: done before timing, so the
    # stall measured is indexing's own.
    panel.create_collection("bench")
    panel.job.finished.connect(lambda *_: loop.quit())
    panel.job.failed.connect(lambda reason: (print(reason), loop.quit()))
    loop.exec()
    started = time.perf_counter()
    beat.start()
    panel.add_paths([str(folder)])
    loop.exec()
    stall = beat.stop()
    seconds = time.perf_counter() - started
    collection = store.list_collections()[0]
    chunks = sum(d.chunk_count for d in store.list_documents(collection.id))
    print(f"indexed {chunks} chunks of {len(list(folder.iterdir()))} files in {seconds:.1f} s "
          f"({chunks / seconds:.1f} chunks/s)")
    print(f"idle window: longest stall {idle:.1f} ms")
    print(f"indexing:    longest stall {stall:.1f} ms")
    page.shutdown()
    bridge.shutdown()
    store.close()
    qapp.processEvents()
    shutil.rmtree(home, ignore_errors=True)
    return verdict("index_ui_stall", stall, FLOOR_MS, higher_is_better=False, unit=" ms")


if __name__ == "__main__":
    raise SystemExit(main())
