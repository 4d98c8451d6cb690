"""Indexing's progress and outcome in words, for the Documents panel."""

from __future__ import annotations

from pathlib import Path

from app.services.documents import IndexProgress, IndexReport


def progress_text(p: IndexProgress) -> str:
    """"3 of 10 documents · 45.2 chunks/s · about 12 s left · notes.pdf"."""
    parts = [f"{p.documents_done} of {p.documents_total} documents",
             f"{p.chunks_per_s:.1f} chunks/s"]
    if p.eta_s is not None:
        parts.append(f"about {_duration(p.eta_s)} left")
    if p.current:
        parts.append(Path(p.current).name)
    return " · ".join(parts)


def report_text(report: IndexReport) -> str:
    if report.cancelled:
        head = f"Cancelled: {len(report.indexed)} documents indexed before the stop"
    else:
        head = f"Indexed {len(report.indexed)} documents ({report.chunks} chunks)"
    unchanged = report.unchanged + len(report.touched)
    if unchanged:
        head += f", {unchanged} unchanged"
    if report.removed:
        head += f", {len(report.removed)} removed (deleted from their folder)"
    if report.failures:
        head += f", {len(report.failures)} could not be read"
    return head + "."


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 90 else f"{round(seconds / 60)} min"
