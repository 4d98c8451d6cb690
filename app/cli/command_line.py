"""The `hearth` argument parser and entry point: the window by default, else a sub-command.

Sub-commands import what they need when they run, so `hearth --help` and `hearth info` do not
pay for Qt, SQLAlchemy or llama.cpp.
"""

from __future__ import annotations

import argparse
import sys

from app.cli import chat, docs, get, gui, hub_token, info, models, quantize, search, serve

# The order sub-commands are listed in `hearth --help`.
_SUB_COMMANDS = (models, info, chat, docs, serve, search, get, quantize, hub_token)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hearth",
        description="Chat with local GGUF language models. Without a command, opens the window.",
    )
    parser.set_defaults(func=gui.run)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in _SUB_COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `hearth` command; returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help and usage errors: return argparse's code, don't exit
        return exc.code if isinstance(exc.code, int) else 1
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
