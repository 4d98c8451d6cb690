"""`hearth docs add|list|remove|search`: document collections from the terminal (issue 13).

Text that comes from documents (passages, file names, failure reasons quoting a file) is printed
through `terminal_safe`, so a document cannot drive the terminal with escape sequences.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli.progress import _eta
from app.cli.shared import CliError, ctrl_c, open_store

if TYPE_CHECKING:
    from collections.abc import Iterator

    from app.engine.serving.embedding_model import EmbeddingModel
    from app.models.document_records import CollectionRecord
    from app.models.store import Store
    from app.services.documents import IndexProgress


def add_parser(sub: argparse._SubParsersAction) -> None:
    docs = sub.add_parser(
        "docs", help="document collections to chat with",
        description="Index documents (PDF, DOCX, Markdown, text, HTML, EPUB, code) into named "
        "collections, list and search them. `hearth chat MODEL --docs NAME` uses one.")
    verbs = docs.add_subparsers(dest="docs_command", metavar="ACTION", required=True)
    add = verbs.add_parser("add", help="index files or folders into a collection (made if new)",
                           description="Index files or folders (recursively) into COLLECTION. "
                           "Unchanged files are skipped, so running it again resumes or "
                           "picks up changes.")
    add.add_argument("collection", metavar="COLLECTION")
    add.add_argument("paths", metavar="PATH", nargs="+")
    add.add_argument("--embedding-model", metavar="GGUF",
                     help="embedding model for a new collection (default: the starter, "
                     "all-MiniLM-L6-v2)")
    add.set_defaults(func=run_add)
    listing = verbs.add_parser("list", help="list collections, or one collection's documents")
    listing.add_argument("collection", metavar="COLLECTION", nargs="?")
    listing.set_defaults(func=run_list)
    remove = verbs.add_parser("remove", help="remove documents, or the whole collection")
    remove.add_argument("collection", metavar="COLLECTION")
    remove.add_argument("paths", metavar="PATH", nargs="*",
                        help="documents to remove (default: the whole collection)")
    remove.set_defaults(func=run_remove)
    search = verbs.add_parser("search", help="the passages of a collection that best match")
    search.add_argument("collection", metavar="COLLECTION")
    search.add_argument("query", metavar="QUERY")
    search.add_argument("-k", type=int, default=5, metavar="N", help="passages to show")
    search.add_argument("--json", action="store_true", help="print JSON for scripts")
    search.set_defaults(func=run_search)


def _collection(store: Store, name: str) -> CollectionRecord:
    found = store.find_collection(name)
    if found is None:
        raise CliError(f"There is no collection {name!r}. `hearth docs list` shows them.")
    return found


@contextmanager
def _embedding_model(collection: CollectionRecord) -> Iterator[EmbeddingModel]:
    from app.engine.gguf.info import GGUFError
    from app.engine.serving.pool import LoadError, ModelPool
    from app.services.documents import load_collection_model

    pool = ModelPool()
    try:
        try:
            model = load_collection_model(pool, collection)
        except (LoadError, GGUFError, OSError) as exc:
            raise CliError(f"Could not load the collection's embedding model "
                           f"{collection.embedding_model}: {exc}") from exc
        yield model
    finally:
        pool.shutdown()


def _fail(exc: Exception) -> int:
    from app.cli.terminal_text import terminal_safe

    print(f"hearth docs: {terminal_safe(str(exc))}", file=sys.stderr)
    return 1


class _Progress:
    """Documents, chunks/s and ETA: a redrawn line on a terminal, plain lines in a pipe."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()

    def __call__(self, p: IndexProgress) -> None:
        from app.cli.terminal_text import terminal_safe

        name = terminal_safe(Path(p.current).name) if p.current else ""
        line = (f"{p.documents_done}/{p.documents_total} documents  {p.chunks_done} chunks  "
                f"{p.chunks_per_s:.1f} chunks/s  ETA {_eta(p.eta_s)}  {name}")
        if self.tty:
            width = shutil.get_terminal_size().columns - 1
            sys.stderr.write("\r" + line[:width].ljust(width))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def run_add(args: argparse.Namespace) -> int:
    from app.cli.terminal_text import terminal_safe
    from app.engine.starter import StarterError
    from app.models.store.documents import CollectionExists
    from app.services.documents import Indexer, open_collection

    try:
        with open_store() as store:
            try:
                collection = open_collection(store, args.collection,
                                             embedding_model=args.embedding_model)
            except (StarterError, CollectionExists, ValueError) as exc:
                raise CliError(str(exc)) from exc
            with _embedding_model(collection) as model:
                progress = _Progress()
                indexer = Indexer(store, collection, model, progress=progress)
                with ctrl_c(indexer.cancel):
                    report = indexer.run(args.paths)
            if progress.tty:
                sys.stderr.write("\n")
    except CliError as exc:
        return _fail(exc)
    state = "Cancelled" if report.cancelled else "Done"
    print(f"{state}: {len(report.indexed)} indexed ({report.chunks} chunks), "
          f"{report.unchanged + len(report.touched)} unchanged, {len(report.failures)} failed "
          f"in {report.seconds:.1f} s.")
    for failure in report.failures:
        print(f"  failed: {terminal_safe(failure.path)}: {terminal_safe(failure.reason)}")
    return 130 if report.cancelled else (1 if report.failures else 0)


def run_list(args: argparse.Namespace) -> int:
    from app.cli.terminal_text import terminal_safe

    try:
        with open_store() as store:
            if args.collection is None:
                collections = store.list_collections()
                if not collections:
                    print("No collections yet. `hearth docs add NAME PATH…` makes one.")
                for c in collections:
                    documents = store.list_documents(c.id)
                    failed = sum(d.status == "failed" for d in documents)
                    print(f"{terminal_safe(c.name)}  {len(documents)} documents"
                          + (f" ({failed} failed)" if failed else "")
                          + f"  {sum(d.chunk_count for d in documents)} chunks  "
                          f"chunk {c.chunk_size}/{c.chunk_overlap} tokens  "
                          f"{terminal_safe(Path(c.embedding_model).name)}")
                return 0
            collection = _collection(store, args.collection)
            for d in store.list_documents(collection.id):
                status = (f"{d.chunk_count} chunks" if d.status == "indexed"
                          else f"failed: {terminal_safe(d.error or '')}")
                print(f"{terminal_safe(d.path)}  {status}")
    except CliError as exc:
        return _fail(exc)
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from app.cli.terminal_text import terminal_safe

    try:
        with open_store() as store:
            collection = _collection(store, args.collection)
            if not args.paths:
                store.delete_collection(collection.id)
                print(f"Removed the collection {terminal_safe(collection.name)}.")
                return 0
            missing = 0
            for raw in args.paths:
                path = str(Path(raw).expanduser().absolute())
                if store.remove_document(collection.id, path):
                    print(f"Removed {terminal_safe(path)}.")
                else:
                    missing += 1
                    print(f"Not in the collection: {terminal_safe(raw)}", file=sys.stderr)
    except CliError as exc:
        return _fail(exc)
    return 1 if missing else 0


def run_search(args: argparse.Namespace) -> int:
    from app.cli.terminal_text import terminal_safe
    from app.services.documents import DEFAULT_THRESHOLD

    try:
        with open_store() as store:
            collection = _collection(store, args.collection)
            with _embedding_model(collection) as model:
                vector = model.embed([args.query]).vectors[0]
            found = store.search_documents([collection.id], args.query, vector,
                                           top_k=max(1, args.k), threshold=DEFAULT_THRESHOLD)
    except CliError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps([{"file": r.document_path, "page": r.page, "heading": r.heading,
                           "start": r.start, "score": r.cosine, "text": r.text}
                          for r in found], ensure_ascii=False))
        return 0
    if not found:
        print("Nothing in the collection is relevant enough to that question.")
    for n, r in enumerate(found, start=1):
        page = f", page {r.page}" if r.page is not None else ""
        score = f"{r.cosine:.2f}" if r.cosine is not None else "-"
        print(f"[{n}] {terminal_safe(Path(r.document_path).name)}{page}  score {score}")
        print("    " + terminal_safe(r.text).replace("\n", "\n    "))
    return 0
