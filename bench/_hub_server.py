"""Serve the starter model from the tests' fake Hub in its own process (for bench/download.py).

Prints the Hub's address, then serves until its standard input closes.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from _common import starter_model  # noqa: E402
from fake_hub import FakeHub, FakeRepo  # noqa: E402

REPO = "google/gemma-3-270m-GGUF"
FILE = "gemma-3-270m-Q4_K_M.gguf"


def main() -> None:
    hub = FakeHub()
    hub.add_repo(FakeRepo(REPO, {FILE: starter_model().read_bytes()}))
    hub.start()
    print(hub.url, flush=True)
    sys.stdin.read()
    hub.stop()


if __name__ == "__main__":
    main()
