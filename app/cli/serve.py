"""`hearth serve`: the OpenAI-compatible API, headless, until Ctrl+C."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from app.cli.shared import CliError, open_store, resolve_model

if TYPE_CHECKING:
    from app.engine.serving.pool import ModelPool
    from app.models.store import Store
    from app.server.config import ServerConfig
    from app.services.serving import ModelCatalog

DEFAULT_PORT = 1234  # as app.server.config; repeated so `hearth --help` needs no FastAPI


def add_parser(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve", help="serve your models over an OpenAI-compatible API",
        description="Serve your models over an OpenAI-compatible API (as LM Studio's server "
                    "does), until Ctrl+C. Models load on their first request; --model loads "
                    "one now.")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help=f"port to listen on (default {DEFAULT_PORT})")
    where = serve.add_mutually_exclusive_group()
    where.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only)")
    where.add_argument("--network", action="store_true",
                       help="serve on the local network (all addresses); needs an API key")
    serve.add_argument("--model", action="append", default=[], metavar="NAME",
                       help="load this model now: `starter`, a name in your library or a "
                            ".gguf path (repeat for several)")
    serve.add_argument("--api-key", default=os.environ.get("HEARTH_API_KEY") or None,
                       metavar="KEY",
                       help="require this key from clients, beside the keys saved on Hearth's "
                            "Developer page (default: $HEARTH_API_KEY; without one, clients on "
                            "this machine need none)")
    serve.add_argument("--require-key", action="store_true",
                       help="ask clients on this machine for a key too (the keys saved on "
                            "Hearth's Developer page, or --api-key)")
    serve.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                       help="let web pages from this origin call the API (repeatable)")
    serve.add_argument("--fetch-images", action="store_true",
                       help="fetch images that requests give as http(s) addresses (off: only "
                            "inline data: images are read). The server then makes web "
                            "requests on a client's behalf, to this machine's network too")
    serve.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.cli.serve_keys import serve_keys
    from app.cli.terminal_text import terminal_safe
    from app.server.config import ConfigError, ServerConfig
    from app.server.runner import PortInUse, ServerError

    try:
        with open_store() as store:
            keys = serve_keys(store, api_key=args.api_key, network=args.network,
                              host=args.host, require_key=args.require_key)
            config = ServerConfig(host=args.host, port=args.port, network=args.network,
                                  api_keys=keys.keys, require_key=keys.required,
                                  cors_origins=tuple(args.cors_origin),
                                  fetch_images=args.fetch_images)
            return _serve(store, config, args.model, keys.saved)
    except PortInUse as exc:
        print(f"hearth serve: {exc} (--port N picks another)", file=sys.stderr)
        return 1
    except (ConfigError, ServerError, CliError) as exc:
        print(f"hearth serve: {terminal_safe(str(exc))}", file=sys.stderr)
        return 1


def _serve(store: Store, config: ServerConfig, specs: list[str], saved_keys: int) -> int:
    from app.cli.terminal_text import terminal_safe
    from app.engine.serving.pool import ModelPool
    from app.server.app_factory import create_app
    from app.server.runner import ServerRunner
    from app.services.serving import ModelCatalog

    catalog = ModelCatalog(store)
    pool = ModelPool()
    runner = ServerRunner(create_app(pool, catalog, config), config)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda _s, _f: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        runner.start()  # the port first: a busy one is reported before any model loads
        for spec in specs:
            model_id = _preload(store, catalog, pool, spec)
            print(f"Loaded {terminal_safe(model_id)}", file=sys.stderr)
        print(f"Hearth is serving the OpenAI API at {runner.url}/v1", flush=True)
        if config.keys_required:
            saved = (f"one of the {saved_keys} key(s) saved on Hearth's Developer page"
                     if saved_keys else "the key given with --api-key")
            if saved_keys and saved_keys < len(config.api_keys):
                saved += " or the one given with --api-key"
            print(f"Clients must send an API key: {saved}.", file=sys.stderr)
        if config.fetch_images:
            print("Images at http(s) addresses in requests will be fetched (--fetch-images).",
                  file=sys.stderr)
        print("Press Ctrl+C to stop.", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
        print("Stopping…", file=sys.stderr)
        return 0
    finally:
        runner.stop()
        pool.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _preload(store: Store, catalog: ModelCatalog, pool: ModelPool, spec: str) -> str:
    from app.engine.gguf.info import GGUFError
    from app.engine.serving.pool import LoadError

    path = resolve_model(store, spec)
    servable = catalog.add_path(path)
    try:
        pool.load(servable.id, servable.path, catalog.load_settings(servable),
                  kind=servable.kind)
    except (LoadError, GGUFError) as exc:
        raise CliError(f"{spec} could not be loaded: {exc}") from exc
    return servable.id
