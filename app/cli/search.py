"""`hearth search QUERY`: GGUF models on the Hugging Face Hub."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    search = sub.add_parser("search", help="search the Hugging Face Hub for GGUF models",
                            description="Search the Hugging Face Hub for GGUF models.")
    search.add_argument("query", metavar="QUERY", help="words in the repository name")
    search.add_argument("--sort", choices=["downloads", "likes", "lastModified"],
                        default="downloads", help="order of the results (default: downloads)")
    search.add_argument("--limit", type=int, default=20, metavar="N", help="at most N results")
    search.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.cli.terminal_text import terminal_safe  # repo names and tags come from the Hub
    from app.engine.hub.api import HubError, search_models
    from app.engine.hub.hf_token import get_token
    from app.engine.units import human_count

    try:
        models = search_models(args.query, sort=args.sort, limit=args.limit, token=get_token())
    except HubError as exc:
        print(f"hearth search: {exc}", file=sys.stderr)
        return 1
    if not models:
        print(f"No GGUF models on the Hub match {args.query!r}.")
        return 0
    for m in models:
        size = human_count(m.parameters) + " params  " if m.parameters else ""
        updated = m.last_modified.date().isoformat() if m.last_modified else "?"
        notes = ", ".join(filter(None, [*m.notable_tags, m.licence]))
        print(terminal_safe(f"{m.repo_id}\n    ↓{m.downloads:,}  ♥{m.likes:,}  updated "
                            f"{updated}  {size}" + (f"[{notes}]" if notes else "")))
    return 0
