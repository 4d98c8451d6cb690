"""The `hearth` command: sub-commands, and what writes model text and progress to a terminal."""

from app.cli.commands import NO_DISPLAY_EXIT, main

__all__ = ["NO_DISPLAY_EXIT", "main"]
