"""Serve the starter model from the tests' fake Hub in its own process (for bench/download.py
and bench/download_ui.py).

Prints the Hub's address, then serves until its standard input closes. ``--copies N`` serves the
same bytes under N names (``FILES``), so several downloads can run at once; ``--throttle BPS``
slows each transfer so a download lasts long enough to measure the window during it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from _common import starter_model  # noqa: E402
from fake_hub import FakeHub, FakeRepo, Faults  # noqa: E402

REPO = "google/gemma-3-270m-GGUF"
FILE = "gemma-3-270m-Q4_K_M.gguf"
FILES = [FILE, "gemma-3-270m-Q4_K_M-copy.gguf", "gemma-3-270m-Q4_K_M-copy2.gguf"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=1, choices=range(1, len(FILES) + 1))
    parser.add_argument("--throttle", type=int, default=None, metavar="BPS")
    args = parser.parse_args()
    data = starter_model().read_bytes()
    hub = FakeHub()
    hub.add_repo(FakeRepo(REPO, {name: data for name in FILES[:args.copies]}))
    if args.throttle:
        for name in FILES[:args.copies]:
            hub.faults[name] = Faults(throttle_bps=args.throttle)
    hub.start()
    print(hub.url, flush=True)
    sys.stdin.read()
    hub.stop()


if __name__ == "__main__":
    main()
