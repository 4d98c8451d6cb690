"""Bounds on the work one document may cost; files beyond them are refused, not half-read."""

from __future__ import annotations

import zipfile
from pathlib import Path

from app.engine.documents.types import DocumentError

MAX_FILE_BYTES = 200 * 1024 * 1024
# Inside a DOCX/EPUB zip: the declared uncompressed sizes are checked before anything is
# read (zipfile stops at the declared size, so a lying header cannot inflate past it).
MAX_UNZIPPED_BYTES = 256 * 1024 * 1024
MAX_MEMBER_RATIO = 200  # real XML compresses ~10x; a bomb compresses ~1000x
MAX_TEXT_CHARS = 50_000_000  # text kept from one document
MAX_PAGE_CHARS = 2_000_000  # text kept from one PDF page
MAX_PAGES = 20_000
MAX_PAGE_CONTENT_BYTES = 16 * 1024 * 1024  # a PDF page's decoded drawing instructions
MAX_TABLE_PAGE_BYTES = 2 * 1024 * 1024  # pages larger than this are not searched for tables


def check_zip(path: str | Path, zf: zipfile.ZipFile) -> None:
    """`DocumentError` when the archive would unpack to more than the bounds allow."""
    total = 0
    for info in zf.infolist():
        total += info.file_size
        big = info.file_size > 1024 * 1024
        if big and info.file_size > MAX_MEMBER_RATIO * max(info.compress_size, 1):
            raise DocumentError(path, f"refused: {info.filename} would unpack "
                                f"{info.file_size // info.compress_size or 0}x its size "
                                "(a zip bomb?)")
    if total > MAX_UNZIPPED_BYTES:
        raise DocumentError(path, f"refused: it would unpack to {total // (1024 * 1024)} MB, "
                            f"more than the {MAX_UNZIPPED_BYTES // (1024 * 1024)} MB allowed")


def open_zip(path: str | Path) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DocumentError(path, "corrupt or truncated: not a readable zip archive") from exc
    try:
        check_zip(path, zf)
    except DocumentError:
        zf.close()
        raise
    return zf


def check_text_size(path: str | Path, chars: int) -> None:
    if chars > MAX_TEXT_CHARS:
        raise DocumentError(path, f"refused: more than {MAX_TEXT_CHARS:,} characters of text")
