"""The `hearth` command: one module per sub-command, plus terminal-safe text and progress."""

from app.cli.command_line import main
from app.cli.gui import NO_DISPLAY_EXIT

__all__ = ["NO_DISPLAY_EXIT", "main"]
