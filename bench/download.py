"""Download throughput: a 253 MB GGUF from the fake Hub on loopback, through Hearth's download
manager (Range-capable transfer to a .part file, sha256 while writing, rename, journal) vs `curl`
of the same URL in the same run. The Hub runs in its own process. Floor: ≥ 0.9× curl.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, median, verdict

from app.engine.hub.api import file_targets
from app.engine.hub.downloads import DownloadManager

ROUNDS = int(os.environ.get("HEARTH_BENCH_ROUNDS", "6"))


def main() -> int:
    server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_hub_server.py")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        os.environ["HF_ENDPOINT"] = url
        sys.path.insert(0, str(ROOT / "bench"))
        from _hub_server import FILE, REPO

        target = file_targets(REPO, [FILE])[0]
        size = target.size
        work = Path(tempfile.mkdtemp(prefix="hearth-bench-dl-"))
        app_rates, curl_rates = [], []
        def curl_rate() -> float:
            out = work / "curl.gguf"
            started = time.perf_counter()
            subprocess.run(["curl", "-s", "-L", "-o", str(out), target.url], check=True)
            rate = size / (time.perf_counter() - started)
            out.unlink()
            return rate

        def hearth_rate(models: Path) -> float:
            manager = DownloadManager(models)
            started = time.perf_counter()
            key = manager.add(target)
            manager.wait([key])
            rate = size / (time.perf_counter() - started)
            status = manager.status(key)
            manager.close()
            if status != "done":
                raise SystemExit(f"download ended as {status}: {manager.record(key)}")
            shutil.rmtree(models)
            return rate

        for r in range(ROUNDS + 1):
            # Alternate who goes first: the second writer meets the first one's dirty pages.
            if r % 2:
                app_rate, curl = hearth_rate(work / f"models-{r}"), curl_rate()
            else:
                curl, app_rate = curl_rate(), hearth_rate(work / f"models-{r}")
            if r == 0:
                continue  # warm-up: page cache and the server's first connection
            app_rates.append(app_rate)
            curl_rates.append(curl)
            print(f"round {r}: hearth {app_rate / 1e6:.0f} MB/s, curl {curl / 1e6:.0f} MB/s")
        shutil.rmtree(work, ignore_errors=True)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    ratio = median(app_rates) / median(curl_rates)
    return verdict("download_ratio", ratio, 0.9, higher_is_better=True)


if __name__ == "__main__":
    raise SystemExit(main())
