"""`hearth chat MODEL`: chat with a model in the terminal; the chat is saved like the window's."""

from __future__ import annotations

import argparse
import queue
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli.shared import CliError, ctrl_c, open_store, resolve_model

if TYPE_CHECKING:
    from app.engine.serving.host import EngineHost
    from app.engine.types import Sampling
    from app.models.records import MessageRecord
    from app.models.store import Store
    from app.services.documents import ChatDocuments


def add_parser(sub: argparse._SubParsersAction) -> None:
    chat = sub.add_parser(
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
    chat.add_argument("--max-tokens", type=int, metavar="N",
                      help="longest reply, in tokens (0: until the model stops)")
    chat.add_argument("--temperature", type=float, metavar="T", help="sampling temperature")
    chat.add_argument("--seed", type=int, metavar="N",
                      help="sampling seed, for a reply you can reproduce")
    chat.add_argument("--ctx", type=int, metavar="N", help="context window, in tokens")
    chat.add_argument("--chat-id", type=int, metavar="N", help="continue this saved chat")
    chat.add_argument("--docs", action="append", metavar="COLLECTION",
                      help="answer from this document collection (see `hearth docs`); "
                      "may be given more than once")
    chat.set_defaults(func=run)


class _TerminalChat:
    """One loaded model, one stored chat (a ChatSession: the same rules as the window's), and
    the turns typed in the terminal."""

    def __init__(self, store: Store, args: argparse.Namespace) -> None:
        from app.engine.serving.host import EngineHost
        from app.engine.types import Sampling
        from app.services.chat_session import ChatSession

        self.store = store
        self.args = args
        self.events: queue.Queue = queue.Queue()
        self.host: EngineHost = EngineHost(self.events.put)
        self.session = ChatSession(store)
        self.branch: list[MessageRecord] = []  # the chat's branch, as the model is sent it
        self.sampling: Sampling = Sampling()
        self.system = ""
        self.model_path = ""
        self.n_ctx = 0
        self.chat_template: str | None = None  # the loaded model's: whether it reads reasoning
        self.docs: ChatDocuments | None = None

    def _wait(self, job: int, on_token: Callable[[str], None] | None = None) -> object:
        from app.engine.inference.events import Done, Failed, Loaded, Token

        with ctrl_c(lambda: self.host.cancel(job)):
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

        # A terminal chat serves no API: its own slot only, so no KV cache for parallel requests.
        settings = LoadSettings(n_ctx=self.args.ctx, parallel=0) if self.args.ctx \
            else LoadSettings(parallel=0)
        event = self._wait(self.host.load(model_path, settings))
        if isinstance(event, Failed):
            raise CliError(f"Could not load {model_path}: {event.message}")
        self.model_path = model_path
        self.n_ctx = getattr(event, "n_ctx", 0)
        info = getattr(event, "info", None)
        self.chat_template = info.chat_template if info is not None else None
        if self.args.docs:
            from app.cli.chat_docs import open_chat_documents

            self.docs = open_chat_documents(self.store, self.args.docs, self.host.pool,
                                            model_path)

    def open_chat(self) -> None:
        """Continue ``--chat-id`` (its history, prompt and sampling) or prepare a new chat."""
        from app.engine.types import Sampling

        args, store = self.args, self.store
        base = Sampling()
        system = args.system or ""
        if args.chat_id is not None:
            chat = store.get_chat(args.chat_id)
            if chat is None:
                raise CliError(f"There is no chat {args.chat_id}.")
            self.session.chat_id = chat.id
            base = chat.sampling
            system = args.system if args.system is not None else chat.system_prompt
            self.branch = store.list_messages(chat.id)
        overrides = {"temperature": args.temperature, "max_tokens": args.max_tokens,
                     "seed": args.seed}
        self.sampling = Sampling.from_dict(
            {**base.to_dict(), **{k: v for k, v in overrides.items() if v is not None}}
        )
        self.system = system
        if self.session.chat_id is not None:
            store.update_chat(self.session.chat_id, system_prompt=system, sampling=self.sampling,
                              model_path=self.model_path)

    def turn(self, text: str) -> bool:
        """Send one user message and stream the reply to stdout; False if the reply failed."""
        from app.cli.terminal_text import TerminalText, terminal_safe
        from app.engine.inference.events import Done, Failed
        from app.engine.inference.reasoning import template_keeps_reasoning
        from app.services.chat_session import ChatSession

        chat, _ = self.session.ensure_chat(self.system, self.sampling, self.model_path)
        self.branch.append(self.session.add_user_message(chat, text, self.branch))
        started = self.session.start_reply(
            self.branch, keep_reasoning=template_keeps_reasoning(self.chat_template))
        assert started is not None  # the chat was just made sure of
        writer = started.writer
        screen = TerminalText()  # the reply may carry escape sequences: never act on them

        def show(piece: str) -> None:
            sys.stdout.write(screen.feed(piece))
            sys.stdout.flush()
            writer.append(piece)

        history, found = started.history, None
        if self.docs is not None:
            from app.cli.chat_docs import print_mode

            history, found = self.docs.context(history, self.n_ctx, self.sampling.max_tokens)
            print_mode(found)
        job = self.host.chat(history, self.sampling, chat.overflow_policy)
        event = self._wait(job, show)
        sys.stdout.write(screen.flush() + "\n")
        if found is not None:
            from app.cli.chat_docs import print_citations
            from app.models.document_records import ReplySources

            print_citations(found)
            # Saved like the window's: the reply opened there shows its sources.
            self.store.update_message(started.placeholder.id, sources=ReplySources(
                found.mode, found.explanation, found.citations))
        if isinstance(event, Failed):
            self.branch.append(ChatSession.fail_reply(started, event.message))
            writer.wait()  # the writer saves on its own thread; let it land before we go on
            print(f"hearth chat: {terminal_safe(event.message)}", file=sys.stderr)
            return False
        assert isinstance(event, Done)
        stats = event.stats
        self.branch.append(ChatSession.end_reply(started, stats))
        writer.wait()
        note = ", stopped" if stats.stop_reason == "cancelled" else ""
        print(f"[{stats.generated_tokens} tokens, {stats.tokens_per_second:.1f} tok/s{note}]",
              file=sys.stderr)
        return True

    def close(self) -> None:
        if self.docs is not None:
            self.docs.close()
        self.host.shutdown()


def run(args: argparse.Namespace) -> int:
    with open_store() as store:
        session = _TerminalChat(store, args)
        try:
            session.load(resolve_model(store, args.model))
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
