"""The `hearth` command: the window by default, and headless sub-commands for terminals.

Sub-commands import what they need when they run, so `hearth --help` and `hearth info` do not
pay for Qt, SQLAlchemy or llama.cpp.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.engine.inference.host import EngineHost
    from app.engine.types import ChatMessage, Sampling
    from app.models.records import ChatRecord
    from app.models.store import Store

NO_DISPLAY_EXIT = 2
_TITLE_CHARS = 60

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


class CliError(Exception):
    """A problem the user can fix; printed as one message, exit code 1."""


def _has_display() -> bool:
    if not sys.platform.startswith("linux"):
        return True
    env = os.environ
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY") or env.get("QT_QPA_PLATFORM"))


# -- the window ------------------------------------------------------------------------------


def _gui(_args: argparse.Namespace) -> int:
    if not _has_display():
        print(NO_DISPLAY_MESSAGE.format(hearth=_command_name()), file=sys.stderr)
        return NO_DISPLAY_EXIT
    from app.ui.app import run_gui

    return run_gui()


# -- models and info -------------------------------------------------------------------------


@contextlib.contextmanager
def _open_store() -> Iterator[Store]:
    from app.engine.logfile import LogFile
    from app.engine.paths import data_paths
    from app.models.store import Store

    paths = data_paths().ensure()
    log_file = LogFile(paths.logs)
    store = Store.open(paths.database)
    try:
        yield store
    finally:
        store.close()
        log_file.close()


def _models(_args: argparse.Namespace) -> int:
    from app.engine.units import human_bytes

    with _open_store() as store:
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


def _info(args: argparse.Namespace) -> int:
    from app.engine.gguf.info import GGUFError, format_model_info, read_model_info

    try:
        info = read_model_info(args.file)
    except GGUFError as exc:
        print(f"hearth info: {exc}", file=sys.stderr)
        return 1
    from app.engine.inference.arch_support import architecture_supported, unsupported_message
    from app.engine.sizing.memory_estimate import estimate_memory, format_estimate
    from app.engine.types import LoadSettings

    settings = LoadSettings(n_ctx=args.ctx or LoadSettings().n_ctx, kv_cache_type=args.kv_type)
    supported = architecture_supported(info.architecture)
    if args.json:
        data = info.to_dict()
        data["architecture_supported"] = supported
        if args.ctx:
            est = estimate_memory(info, settings, [])
            data["memory_estimate"] = {"n_ctx": est.n_ctx, "ram_bytes_cpu_only": est.ram_bytes,
                                       "breakdown": est.breakdown()}
        print(json.dumps(data, indent=2))
    else:
        from app.cli.terminal_text import terminal_safe

        print(terminal_safe(format_model_info(info)))  # GGUF metadata is untrusted
        if not supported:
            print(f"Cannot be loaded: {unsupported_message(info.architecture)}.")
        print(format_estimate(info, settings))
    return 0


# -- chat ------------------------------------------------------------------------------------


def _resolve_model(store: Store, spec: str) -> str:
    """A model path from a file path, "starter", or a (part of a) name in the library."""
    from app.engine.starter import StarterError
    from app.models.library import ensure_starter, starter_record

    if spec == "starter":
        record = starter_record(store)
        if record is None:
            print("Preparing the starter model (Gemma 3 270M, 253 MB)…", file=sys.stderr)
            try:
                record = ensure_starter(store)
            except StarterError as exc:
                raise CliError(str(exc)) from exc
        return record.path
    path = Path(spec).expanduser()
    if path.is_file():
        return str(path.absolute())
    if os.sep in spec or spec.lower().endswith(".gguf"):
        raise CliError(f"No such file: {spec}")
    needle = spec.lower()
    named = [(r, (r.name.lower(), Path(r.path).name.lower())) for r in store.list_model_files()]
    # An exact name wins over substrings, so "tiny" can pick "tiny" beside "tiny-chatml".
    matches = [r for r, names in named if needle in names]
    matches = matches or [r for r, names in named if any(needle in n for n in names)]
    if len(matches) == 1:
        return matches[0].path
    if not matches:
        raise CliError(f"No model in your library matches {spec!r}. `hearth models` lists them; "
                       "you can also give a path to a .gguf file, or `starter`.")
    listed = "\n".join(f"  {r.name}  {r.path}" for r in matches)
    raise CliError(f"{spec!r} matches several models; give more of the name or a path:\n{listed}")


@contextlib.contextmanager
def _ctrl_c(action: Callable[[], None]) -> Iterator[None]:
    """While active, Ctrl+C runs ``action`` (cancel the engine job) instead of raising."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda _sig, _frame: action())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _TerminalChat:
    """One loaded model, one stored chat, and the turns typed in the terminal."""

    def __init__(self, store: Store, args: argparse.Namespace) -> None:
        from app.engine.inference.host import EngineHost
        from app.engine.types import Sampling

        self.store = store
        self.args = args
        self.events: queue.Queue = queue.Queue()
        self.host: EngineHost = EngineHost(self.events.put)
        self.chat: ChatRecord | None = None
        self.history: list[ChatMessage] = []
        self.sampling: Sampling = Sampling()
        self.system = ""
        self.model_path = ""

    def _wait(self, job: int, on_token: Callable[[str], None] | None = None) -> object:
        from app.engine.inference.events import Done, Failed, Loaded, Token

        with _ctrl_c(lambda: self.host.cancel(job)):
            while True:
                event = self.events.get()
                if event.job_id != job:
                    continue
                if isinstance(event, Token) and on_token is not None:
                    on_token(event.text)
                elif isinstance(event, Done | Failed | Loaded):
                    return event

    def load(self, model_path: str) -> None:
        from app.engine.inference.events import Failed
        from app.engine.types import LoadSettings

        settings = LoadSettings(n_ctx=self.args.ctx) if self.args.ctx else LoadSettings()
        event = self._wait(self.host.load(model_path, settings))
        if isinstance(event, Failed):
            raise CliError(f"Could not load {model_path}: {event.message}")
        self.model_path = model_path

    def open_chat(self) -> None:
        """Continue ``--chat-id`` (its history, prompt and sampling) or prepare a new chat."""
        from app.engine.types import ChatMessage, Sampling

        args, store = self.args, self.store
        base = Sampling()
        system = args.system or ""
        if args.chat_id is not None:
            self.chat = store.get_chat(args.chat_id)
            if self.chat is None:
                raise CliError(f"There is no chat {args.chat_id}.")
            base = self.chat.sampling
            system = args.system if args.system is not None else self.chat.system_prompt
            self.history = [
                ChatMessage(m.role, m.content) for m in store.list_messages(self.chat.id)
                if m.role != "system" and m.content and m.status != "failed"
            ]
        overrides = {"temperature": args.temperature, "max_tokens": args.max_tokens,
                     "seed": args.seed}
        self.sampling = Sampling.from_dict(
            {**base.to_dict(), **{k: v for k, v in overrides.items() if v is not None}}
        )
        self.system = system
        if self.chat is not None:
            store.update_chat(self.chat.id, system_prompt=system, sampling=self.sampling,
                              model_path=self.model_path)

    def turn(self, text: str) -> bool:
        """Send one user message and stream the reply to stdout; False if the reply failed."""
        from app.cli.terminal_text import TerminalText, terminal_safe
        from app.engine.inference.events import Done, Failed
        from app.engine.types import ChatMessage
        from app.models.reply_writer import ReplyWriter

        store = self.store
        if self.chat is None:
            title = text.strip().splitlines()[0][:_TITLE_CHARS]
            self.chat = store.create_chat(title, self.system, self.sampling, self.model_path)
        store.add_message(self.chat.id, "user", text)
        self.history.append(ChatMessage("user", text))
        reply = store.add_message(self.chat.id, "assistant", "", status="streaming")
        writer = ReplyWriter(store, reply.id)
        screen = TerminalText()  # the reply may carry escape sequences: never act on them

        def show(piece: str) -> None:
            sys.stdout.write(screen.feed(piece))
            sys.stdout.flush()
            writer.append(piece)

        messages = [ChatMessage("system", self.system)] if self.system else []
        job = self.host.chat([*messages, *self.history], self.sampling,
                             self.chat.overflow_policy)
        event = self._wait(job, show)
        sys.stdout.write(screen.flush() + "\n")
        if isinstance(event, Failed):
            writer.fail(event.message)
            writer.wait()  # the writer saves on its own thread; let it land before we go on
            self.history.pop()
            print(f"hearth chat: {terminal_safe(event.message)}", file=sys.stderr)
            return False
        assert isinstance(event, Done)
        stats = event.stats
        if stats.stop_reason == "cancelled":
            writer.stop(stats)
        else:
            writer.finish(stats)
        writer.wait()
        self.history.append(ChatMessage("assistant", writer.text))
        note = ", stopped" if stats.stop_reason == "cancelled" else ""
        print(f"[{stats.generated_tokens} tokens, {stats.tokens_per_second:.1f} tok/s{note}]",
              file=sys.stderr)
        return True

    def close(self) -> None:
        self.host.shutdown()


def _chat(args: argparse.Namespace) -> int:
    with _open_store() as store:
        session = _TerminalChat(store, args)
        try:
            session.load(_resolve_model(store, args.model))
            session.open_chat()
            if args.prompt is not None:
                return 0 if session.turn(args.prompt) else 1
            return _chat_loop(session)
        except CliError as exc:  # may quote a GGUF's text: printed inert
            from app.cli.terminal_text import terminal_safe

            print(f"hearth chat: {terminal_safe(str(exc))}", file=sys.stderr)
            return 1
        finally:
            session.close()


def _chat_loop(session: _TerminalChat) -> int:
    from app.cli.terminal_text import terminal_safe

    interactive = sys.stdin.isatty()
    if interactive:
        print(f"Chatting with {terminal_safe(Path(session.model_path).name)}. "
              "Ctrl+C stops a reply; Ctrl+D quits.", file=sys.stderr)
    while True:
        try:
            line = input("you> ") if interactive else sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not interactive and not line:
            return 0
        if line.strip():
            session.turn(line.strip())


# -- the Hub: search and get -----------------------------------------------------------------


def _search(args: argparse.Namespace) -> int:
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


def _get(args: argparse.Namespace) -> int:
    from app.cli.progress import TerminalProgress
    from app.engine.hub.api import HubError, file_targets, list_gguf_files
    from app.engine.hub.downloads import DownloadError, DownloadManager
    from app.engine.hub.hf_token import get_token
    from app.engine.paths import data_paths
    from app.models.downloaded import register_download

    token = get_token()
    with _open_store() as store:
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
        with _ctrl_c(manager.close):
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


def _token(args: argparse.Namespace) -> int:
    import getpass

    from app.engine.hub.hf_token import clear_token, get_token, login_still_applies, set_token

    if args.action == "set":
        # Read from the terminal (or stdin), never from argv, which other users can see in ps.
        token = (getpass.getpass("Hugging Face token: ") if sys.stdin.isatty()
                 else sys.stdin.readline()).strip()
        if not token:
            print("hearth token: no token given", file=sys.stderr)
            return 1
        where = set_token(token)
        print(f"Token saved ({'system keyring' if where == 'keyring' else 'private file'}).")
    elif args.action == "clear":
        clear_token()
        print("Token removed.")
        still = login_still_applies()
        if still:
            print(f"Note: {still}.")
    else:
        print("Token: set" if get_token() else "Token: not set")
    return 0


# -- quantize --------------------------------------------------------------------------------


def _quantize(args: argparse.Namespace) -> int:
    from app.engine.quantize.quality import (
        EvalProgress,
        EvaluateJob,
        QualityCancelled,
        eval_gpu_layers,
        to_csv,
        to_markdown,
    )
    from app.engine.quantize.quantize import (
        OutputExists,
        QuantizeError,
        QuantizeJob,
        QuantizeProgress,
        QuantizeRequest,
        RequantizeRefused,
        plan_quantize,
        predicted_info,
    )
    from app.engine.sizing.fit_verdict import FIT_CTX, estimated_fit
    from app.engine.sizing.hardware import probe_hardware
    from app.engine.sizing.memory_estimate import shape_of
    from app.engine.steps import drain
    from app.engine.units import human_bytes
    from app.models.quantized import evaluate_and_save, quantize_and_register

    with _open_store() as store:
        try:
            source = Path(_resolve_model(store, args.source))
            request = QuantizeRequest(
                source, tuple(args.types), out_dir=args.out, imatrix=args.imatrix,
                threads=args.threads, allow_requantize=args.allow_requantize,
                overwrite=args.overwrite,
            )
            print(f"Checking {source.name} and predicting sizes…", file=sys.stderr)
            plan = plan_quantize(request)
        except (CliError, QuantizeError) as exc:
            hint = {RequantizeRefused: " Add --allow-requantize to go ahead anyway.",
                    OutputExists: " Or add --overwrite to replace it."}.get(type(exc), "")
            print(f"hearth quantize: {exc}{hint}", file=sys.stderr)
            return 1
        if plan.warning:
            print(f"Warning: {plan.warning}", file=sys.stderr)
        # The same verdict the quantize dialog shows: as many layers on the GPU as fit.
        hardware = probe_hardware()
        gpus = hardware.gpus if hardware.gpu_offload_supported else []
        shape = shape_of(plan.source)
        n_ctx = min(FIT_CTX, plan.source.context_length or FIT_CTX)
        print(f"{'TYPE':<9} {'PREDICTED':>10}  {'FIT AT ' + str(n_ctx):<17} OUTPUT")
        for target in plan.targets:
            size = target.predicted_size
            fit = (estimated_fit(predicted_info(plan.source, size), shape,
                                 hardware.ram_available, gpus).verdict if size else "unknown")
            print(f"{target.quant.name:<9} {human_bytes(size) if size else '?':>10}  "
                  f"{fit:<17} {target.output}")

        def show(step: QuantizeProgress | EvalProgress) -> None:
            print(f"\r  {step.describe()}      ", end="", file=sys.stderr)

        job = QuantizeJob(plan)
        with _ctrl_c(job.cancel):
            outcome = drain(quantize_and_register(job, store), show)
        print(file=sys.stderr)
        for output in outcome.files:
            print(f"Added {output.path} ({human_bytes(output.size)}, {output.seconds:.1f} s) "
                  "to your library.")
        if outcome.error is not None:
            print(f"hearth quantize: {outcome.error}", file=sys.stderr)
            return 1
        if args.no_report:
            return 0

        evaluation = EvaluateJob(source, [(o.type_name, o.path) for o in outcome.files],
                                 max_chunks=args.windows, threads=args.threads,
                                 gpu_layers=eval_gpu_layers(plan.source, gpus))
        with _ctrl_c(evaluation.cancel):
            try:
                report = drain(evaluate_and_save(evaluation, store), show).report
            except QualityCancelled:
                print("\nQuality report skipped; the quantized files are kept.", file=sys.stderr)
                return 130
        print(file=sys.stderr)
        print(to_markdown(report))
        if args.report:
            text = to_csv(report) if args.report.suffix.lower() == ".csv" else to_markdown(report)
            args.report.write_text(text, encoding="utf-8")
            print(f"Report written to {args.report}")
    return 0


# -- argument parsing ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hearth",
        description="Chat with local GGUF language models. Without a command, opens the window.",
    )
    parser.set_defaults(func=_gui)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    models = commands.add_parser("models", help="list the models in your library",
                                 description="List the models in your library.")
    models.set_defaults(func=_models)

    info = commands.add_parser("info", help="show a GGUF file's metadata",
                               description="Show what a GGUF file says about its model, "
                               "without loading the weights.")
    info.add_argument("file", metavar="FILE", help="path to a .gguf file")
    info.add_argument("--json", action="store_true", help="print the metadata as JSON")
    info.add_argument("--ctx", type=int, metavar="N",
                      help="context length for the RAM/VRAM estimate (default 4096)")
    info.add_argument("--kv-type", choices=("f16", "q8_0", "q4_0"), default="f16",
                      help="KV-cache type for the estimate")
    info.set_defaults(func=_info)

    chat = commands.add_parser(
        "chat", help="chat with a model in the terminal",
        description="Chat with a model in the terminal. The chat is saved and shows up in the "
        "window too. Ctrl+C stops a reply (the partial reply is kept); Ctrl+D quits.",
    )
    chat.add_argument("model", metavar="MODEL",
                      help='a .gguf path, a name (or part of one) from `hearth models`, '
                      'or "starter"')
    chat.add_argument("--system", metavar="TEXT", help="system prompt")
    chat.add_argument("--prompt", metavar="TEXT",
                      help="send this one message, print the reply and exit")
    chat.add_argument("--max-tokens", type=int, metavar="N", help="longest reply, in tokens")
    chat.add_argument("--temperature", type=float, metavar="T", help="sampling temperature")
    chat.add_argument("--seed", type=int, metavar="N",
                      help="sampling seed, for a reply you can reproduce")
    chat.add_argument("--ctx", type=int, metavar="N", help="context window, in tokens")
    chat.add_argument("--chat-id", type=int, metavar="N", help="continue this saved chat")
    chat.set_defaults(func=_chat)

    search = commands.add_parser("search", help="search the Hugging Face Hub for GGUF models",
                                 description="Search the Hugging Face Hub for GGUF models.")
    search.add_argument("query", metavar="QUERY", help="words in the repository name")
    search.add_argument("--sort", choices=["downloads", "likes", "lastModified"],
                        default="downloads", help="order of the results (default: downloads)")
    search.add_argument("--limit", type=int, default=20, metavar="N", help="at most N results")
    search.set_defaults(func=_search)

    get = commands.add_parser(
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
    get.set_defaults(func=_get)

    quantize = commands.add_parser(
        "quantize", help="quantize a model to smaller types, with a quality report",
        description="Quantize a GGUF model to one or more types with llama.cpp, add the "
        "results to your library, and measure each one's perplexity and speed against the "
        "source. Ctrl+C stops it; the file in progress is removed.",
    )
    quantize.add_argument("source", metavar="SOURCE",
                          help="a .gguf path or a name (or part of one) from `hearth models`")
    quantize.add_argument("--type", dest="types", action="append", required=True,
                          metavar="TYPE", help="target type such as Q4_K_M; repeat for more")
    quantize.add_argument("--imatrix", type=Path, metavar="FILE",
                          help="importance matrix (enables IQ types, improves low-bit types)")
    quantize.add_argument("--out", type=Path, metavar="DIR",
                          help="output folder (default: Hearth's models folder)")
    quantize.add_argument("--threads", type=int, default=0, metavar="N",
                          help="threads (default: all)")
    quantize.add_argument("--allow-requantize", action="store_true",
                          help="quantize an already-quantized model (compounds its error)")
    quantize.add_argument("--overwrite", action="store_true",
                          help="replace outputs that already exist")
    quantize.add_argument("--no-report", action="store_true",
                          help="skip measuring perplexity and speed")
    quantize.add_argument("--windows", type=int, metavar="N",
                          help="perplexity windows to measure (default: the whole sample)")
    quantize.add_argument("--report", type=Path, metavar="FILE",
                          help="also write the report to FILE (.md or .csv)")
    quantize.set_defaults(func=_quantize)

    token = commands.add_parser(
        "token", help="set, clear or check the Hugging Face token for gated models",
        description="Store the optional Hugging Face token (system keyring, else a file only "
        "you can read). `set` reads it from the terminal or standard input.")
    token.add_argument("action", choices=["set", "clear", "status"])
    token.set_defaults(func=_token)
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
