"""`hearth get REPO`: download a GGUF model from the Hub into the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.shared import CliError, ctrl_c, open_store


def add_parser(sub: argparse._SubParsersAction) -> None:
    get = sub.add_parser(
        "get", help="download a GGUF model from the Hub into your library",
        description="Download a GGUF model from the Hub, verify its sha256 and add it to your "
        "library. An interrupted download resumes where it stopped when run again.",
    )
    get.add_argument("repo", metavar="REPO", help="repository id, such as owner/name-GGUF")
    pick = get.add_mutually_exclusive_group()
    pick.add_argument("--quant", metavar="TYPE", help="quantization to fetch, such as Q4_K_M")
    pick.add_argument("--file", metavar="NAME", help="exact file name to fetch")
    get.add_argument("--parallel", type=int, default=2, metavar="N",
                     help="files fetched at once for split models (default: 2)")
    get.set_defaults(func=run)


def _pick_file(files: list, args: argparse.Namespace):
    from app.engine.units import human_bytes

    models = [f for f in files if f.kind == "model"]
    if args.file:
        chosen = [f for f in files if args.file in (f.name, *f.parts)]
    elif args.quant:
        chosen = [f for f in models if (f.quant or "").upper() == args.quant.upper()]
    else:
        chosen = models if len(models) == 1 else []
    if len(chosen) == 1:
        return chosen[0]
    listing = "\n".join(f"  {f.label:<28} {human_bytes(f.size):>10}  {f.name}" for f in files)
    what = "Choose one with --quant or --file" if not chosen else "Several files match; use --file"
    raise CliError(f"{what}. Files in {args.repo}:\n{listing}")


def run(args: argparse.Namespace) -> int:
    from app.cli.progress import TerminalProgress
    from app.engine.hub.api import HubError, file_targets, list_gguf_files
    from app.engine.hub.downloads import DownloadError, DownloadManager
    from app.engine.hub.hf_token import get_token
    from app.engine.paths import data_paths
    from app.services.downloaded import register_download

    token = get_token()
    with open_store() as store:
        try:
            files = list_gguf_files(args.repo, token=token)
            if not files:
                raise CliError(f"{args.repo} has no GGUF files.")
            chosen = _pick_file(files, args)
            targets = file_targets(args.repo, chosen.parts, token=token)
            manager = DownloadManager(data_paths().models, TerminalProgress(), journal=store,
                                      token=token, max_parallel=args.parallel)
            keys = [manager.add(target) for target in targets]
        except (CliError, HubError, DownloadError) as exc:
            print(f"hearth get: {exc}", file=sys.stderr)
            return 1
        with ctrl_c(manager.close):
            manager.wait(keys)
        records = [manager.record(key) for key in keys]
        if any(r is None or r.status != "done" for r in records):
            return 1
        errors = register_download(store, Path(records[0].dest))  # type: ignore[union-attr]
        if errors:
            print(f"hearth get: downloaded, but not added to the library: {errors[0]}",
                  file=sys.stderr)
            return 1
        print(f"Added {records[0].dest} to your library.")  # type: ignore[union-attr]
    return 0
