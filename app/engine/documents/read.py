"""`read_document`: a file to a `Document` by its extension; `content_hash` for re-indexing."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from app.engine.documents.html_text import html_parts
from app.engine.documents.limits import MAX_FILE_BYTES, check_text_size
from app.engine.documents.office import read_docx, read_epub
from app.engine.documents.pdf import read_pdf
from app.engine.documents.plain import read_code, read_markdown, read_text
from app.engine.documents.text_clean import decode_text, make_sections
from app.engine.documents.types import Document, DocumentError, Section

_log = logging.getLogger(__name__)

CODE_EXTENSIONS = frozenset({
    ".py", ".pyi", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".java", ".kt", ".kts", ".scala",
    ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".cs", ".go", ".rs", ".rb", ".php", ".swift",
    ".m", ".mm", ".lua", ".pl", ".r", ".jl", ".sh", ".bash", ".zsh", ".fish", ".ps1", ".sql",
    ".css", ".scss", ".toml", ".yaml", ".yml", ".json", ".ini", ".cfg", ".xml", ".dart", ".zig",
    ".hs", ".ml", ".ex", ".exs", ".erl", ".clj", ".vue", ".svelte", ".cmake", ".gradle",
})


def _read_html(path: Path, data: bytes) -> list[Section]:
    return make_sections(html_parts(decode_text(data, path)))


_READERS: dict[str, tuple[str, Callable[[Path, bytes], list[Section]]]] = {
    ".pdf": ("pdf", read_pdf),
    ".docx": ("docx", read_docx),
    ".md": ("markdown", read_markdown),
    ".markdown": ("markdown", read_markdown),
    ".txt": ("text", read_text),
    ".text": ("text", read_text),
    ".rst": ("text", read_text),
    ".log": ("text", read_text),
    ".html": ("html", _read_html),
    ".htm": ("html", _read_html),
    ".xhtml": ("html", _read_html),
    ".epub": ("epub", read_epub),
}
SUPPORTED_EXTENSIONS = frozenset(_READERS) | CODE_EXTENSIONS


def read_document(path: str | Path) -> Document:
    """The text of the file at ``path`` in sections that keep their page and heading.

    Raises `DocumentError` (with a reason for the user) for anything it cannot read: an
    unsupported extension, an empty, too big, binary, corrupt, truncated or encrypted file,
    or a zip bomb. Never anything else for bad content.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _READERS:
        kind, reader = _READERS[suffix]
    elif suffix in CODE_EXTENSIONS:
        kind, reader = "code", read_code
    else:
        raise DocumentError(path, f"unsupported file type {suffix or '(no extension)'!r}")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DocumentError(path, f"too big: {size // (1024 * 1024)} MB, more than the "
                                f"{MAX_FILE_BYTES // (1024 * 1024)} MB allowed")
        if size == 0:
            raise DocumentError(path, "empty file")
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(path, f"cannot read the file: {exc.strerror or exc}") from exc
    try:
        sections = reader(path, data)
    except DocumentError:
        raise
    except RecursionError as exc:
        raise DocumentError(path, "refused: its structure is nested too deeply") from exc
    except Exception as exc:  # noqa: BLE001 - parsers of untrusted files fail in many ways
        _log.warning("could not read %s", path, exc_info=True)
        raise DocumentError(path, f"could not be read ({type(exc).__name__})") from exc
    check_text_size(path, sum(len(s.text) for s in sections))
    if not sections:
        raise DocumentError(path, "no text found (a scanned PDF needs OCR, which Hearth "
                            "does not do)" if kind == "pdf" else "no text found")
    return Document(str(path), kind, sections)


def content_hash(path: str | Path) -> str:
    """Hex sha256 of the file's bytes, read in blocks (never the whole file in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()
