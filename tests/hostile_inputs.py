"""Hostile strings (what a model reply, a GGUF header or a Hub card could hold) and a guard that
checks rendering them read no file, kept memory bounded and finished in time."""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

TIME_BUDGET_S = 2.0  # per string, generous for a slow, shared 2-core machine
RSS_BUDGET = 300 * 2**20  # growth per string; reading /dev/zero would blow far past it
ADDRESS_SPACE_HEADROOM = 3 * 2**30  # a regression aborts this process, not the machine

CANARY = "{canary}"  # replaced by a file under a watched temporary folder


def _controls() -> str:
    return "".join(map(chr, range(0x20))) + "".join(map(chr, range(0x7F, 0xA0)))


HOSTILE: dict[str, str] = {
    "md image /dev/zero": "Look: ![x](/dev/zero)",
    "md image /dev/urandom": "![noise](/dev/urandom)",
    "md image local file": f"![x]({CANARY})",
    "md image file url": f"![x](file://{CANARY})",
    "md image /etc/hostname": "![h](/etc/hostname) ![h](file:///etc/hostname)",
    "md image UNC path": "![x](\\\\host\\share\\a.png)",
    "md image huge data uri": "![x](data:image/png;base64," + "iVBORw0KGgo" * 200_000 + ")",
    "md image by reference": f"![x][r]\n\n[r]: {CANARY}",
    "md image inside a link": f"[![x]({CANARY})](https://example.com)",
    "md image qrc": "![x](qrc:/icons/app.png) ![y](:/icons/app.png)",
    "md image http": "![track](http://127.0.0.1:9/pixel.png)",
    "md link javascript": "[click me](javascript:alert(1))",
    "md link file": f"[open]({CANARY}) [open](file://{CANARY})",
    "md link UNC": "[share](\\\\host\\share)",
    "autolink file": f"<file://{CANARY}>",
    "html img": f'<img src="{CANARY}">',
    "html img /dev/zero": '<img src="/dev/zero" width="10000" height="10000">',
    "html style": f"<style>body {{ background: url({CANARY}) }}</style>text",
    "html stylesheet link": f'<link rel="stylesheet" href="{CANARY}">',
    "html anchor": f'<a href="file://{CANARY}">x</a>',
    "html script iframe": f'<script>alert(1)</script><iframe src="{CANARY}"></iframe>',
    "html table background": f'<table background="{CANARY}"><tr><td>x</td></tr></table>',
    "html inline css": f'<p style="background-image: url({CANARY})">x</p>',
    "5000 nested quotes": ">" * 5000 + " deep",
    "5000 spaced quotes": "> " * 5000 + "deep",
    "1000 nested lists": "\n".join("    " * i + "- item" for i in range(1000)),
    "5000 nested brackets": "[" * 5000 + "x" + "](y)" * 5000,
    "5000 nested emphasis": "*" * 5000 + "x" + "*" * 5000,
    "1 MB single line": "A" * 1_000_000,
    "1 MB of words": "word " * 200_000,
    "100k lines": "line\n" * 100_000,
    "huge table": "|a|b|\n|-|-|\n" + "|x|y|\n" * 50_000,
    "unclosed code fence": "```\n" + "x = 1\n" * 100_000,
    "long link address": "[x](https://example.com/" + "a" * 100_000 + ")",
    "RTL override": "\u202eexe.txt\u202c and \u2066isolate\u2069 \u200f",
    "zero-width": "a\u200b\u200c\u200d\ufeffb" * 2000,
    "combining marks": "e" + "\u0301" * 20_000,
    "ANSI and OSC escapes": "\x1b[31mred\x1b[0m \x1b]0;title\x07 \x1b]52;c;aGVsbG8=\x07 \x1b[2J",
    "C0 and C1 controls": _controls() * 100,
}


def hostile(name: str, canary: Path) -> str:
    return HOSTILE[name].replace(CANARY, str(canary))


# -- watching for reads --------------------------------------------------------------------------
_IN_ACCESS, _IN_OPEN = 0x1, 0x20


class OpenWatch:
    """Linux inotify on a folder: did anything open or read a file in it?"""

    def __init__(self, folder: Path) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0 or self._libc.inotify_add_watch(
                self._fd, os.fsencode(folder), _IN_OPEN | _IN_ACCESS) < 0:
            raise OSError(ctypes.get_errno(), "inotify is needed to watch for file reads")

    def opened(self) -> bool:
        try:
            return bool(os.read(self._fd, 65536))
        except BlockingIOError:
            return False

    def close(self) -> None:
        os.close(self._fd)


@dataclass
class Guard:
    """Runs renderings and collects what went wrong with each."""

    watch: OpenWatch
    problems: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def check(self, name: str) -> Iterator[None]:
        process = psutil.Process()
        self.watch.opened()  # drop earlier events
        rss = process.memory_info().rss
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = process.memory_info().vms + ADDRESS_SPACE_HEADROOM
        if hard == resource.RLIM_INFINITY or cap < hard:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        started = time.monotonic()
        try:
            yield
        finally:
            elapsed = time.monotonic() - started
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        growth = process.memory_info().rss - rss
        if self.watch.opened():
            self.problems.append(f"{name}: a file in the watched folder was opened")
        if elapsed > TIME_BUDGET_S:
            self.problems.append(f"{name}: took {elapsed:.2f} s")
        if growth > RSS_BUDGET:
            self.problems.append(f"{name}: memory grew by {growth / 2**20:.0f} MiB")


@contextlib.contextmanager
def guard(folder: Path) -> Iterator[Guard]:
    watch = OpenWatch(folder)
    try:
        yield Guard(watch)
    finally:
        watch.close()


def make_canary(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    canary = folder / "canary.png"
    canary.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    return canary
