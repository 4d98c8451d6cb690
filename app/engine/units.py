"""How Hearth writes numbers for people: byte sizes and parameter counts, in one place."""

from __future__ import annotations


def human_bytes(n: int) -> str:
    """``1_500_000`` → ``"1.5 MB"``, in decimal units as the Hugging Face Hub lists file sizes."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def human_count(n: int) -> str:
    """Parameter counts the way model cards write them: ``268M``, ``7.2B``, ``120K``."""
    for divisor, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if n >= divisor:
            value = n / divisor
            return f"{value:.0f}{suffix}" if value >= 100 else f"{value:.3g}{suffix}"
    return str(n)
