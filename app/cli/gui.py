"""`hearth` with no sub-command: the window, or a way forward when there is no display."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

NO_DISPLAY_EXIT = 2

NO_DISPLAY_MESSAGE = """\
Hearth's window needs a display, and this session has none (DISPLAY and WAYLAND_DISPLAY are unset).
Run the window on a virtual screen:   xvfb-run -a {hearth}
or use Hearth from the terminal:
  {hearth} chat MODEL     chat with a model (try: {hearth} chat starter)
  {hearth} models         list the models in your library
  {hearth} info FILE      show what a GGUF file contains
  {hearth} quantize MODEL --type Q4_K_M   a smaller copy, with a quality report
Every command has --help."""


def _command_name() -> str:
    """How the user can run `hearth` again: bare if it is on PATH, else its full path."""
    exe = shutil.which("hearth")
    here = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if exe and here and Path(exe).resolve() == here:
        return "hearth"
    if here and here.name == "hearth":
        return os.path.relpath(here) if here.is_relative_to(Path.cwd()) else str(here)
    return "hearth"


def _has_display() -> bool:
    if not sys.platform.startswith("linux"):
        return True
    env = os.environ
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY") or env.get("QT_QPA_PLATFORM"))


def run(_args: argparse.Namespace) -> int:
    if not _has_display():
        print(NO_DISPLAY_MESSAGE.format(hearth=_command_name()), file=sys.stderr)
        return NO_DISPLAY_EXIT
    from app.ui.app import run_gui

    return run_gui()
