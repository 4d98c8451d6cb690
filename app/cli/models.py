"""`hearth models`: list the models in the library."""

from __future__ import annotations

import argparse

from app.cli.shared import open_store


def add_parser(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="list the models in your library",
                            description="List the models in your library.")
    models.set_defaults(func=run)


def run(_args: argparse.Namespace) -> int:
    from app.engine.units import human_bytes

    with open_store() as store:
        records = store.list_model_files()
    if not records:
        print("Your library has no models yet. Import some in the window (My Models), "
              "or chat with the starter model: hearth chat starter")
        return 0
    rows = [("NAME", "QUANT", "SIZE", "PATH")]
    from app.cli.terminal_text import terminal_safe

    # Names and types come from GGUF headers: never let one act on the terminal.
    rows += [(terminal_safe(r.name), terminal_safe(r.file_type), human_bytes(r.file_size),
              terminal_safe(r.path)) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
              + "  " + row[3])
    return 0
