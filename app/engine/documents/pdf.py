"""PDF to one section per page: pypdf for text; pdfplumber for pages that hold ruled tables,
whose rows become text lines with cells separated by " | "."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from app.engine.documents.limits import (
    MAX_PAGE_CHARS,
    MAX_PAGE_CONTENT_BYTES,
    MAX_PAGES,
    MAX_TABLE_PAGE_BYTES,
)
from app.engine.documents.text_clean import make_sections
from app.engine.documents.types import DocumentError, Section

# pypdf and pdfminer log every oddity of a damaged file at WARNING; the user gets our reason.
for _name in ("pypdf", "pdfminer"):
    logging.getLogger(_name).setLevel(logging.ERROR)


def read_pdf(path: Path, data: bytes) -> list[Section]:
    import pypdf
    from pypdf.errors import FileNotDecryptedError, LimitReachedError

    # A PDF ends with %%EOF (pypdf's strict check looks at the last 1 KB too); without it the
    # file was cut short, and a lenient parser would silently return part of it.
    if b"%%EOF" not in data[-1024:]:
        raise DocumentError(path, "corrupt or truncated PDF: the file ends before the PDF does")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(path, "encrypted: needs a password")
        pages = reader.pages
        if len(pages) > MAX_PAGES:
            raise DocumentError(path, f"refused: more than {MAX_PAGES:,} pages")
        sizes = [_content_size(path, number, page) for number, page in enumerate(pages, 1)]
        texts = [_page_text(page) for page in pages]
    except FileNotDecryptedError as exc:
        raise DocumentError(path, "encrypted: needs a password") from exc
    except LimitReachedError as exc:
        raise DocumentError(path, "refused: a page unpacks to more than pypdf's safety limit "
                            "(a decompression bomb?)") from exc
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on malformed files
        raise DocumentError(path, f"corrupt or truncated PDF ({type(exc).__name__})") from exc
    # pdfminer (under pdfplumber) has no size limits and parses in pure Python: only pages
    # with modest drawing instructions are searched for tables.
    candidates = {n for n, size in enumerate(sizes, 1) if 0 < size <= MAX_TABLE_PAGE_BYTES}
    for number, text in _table_pages(path, data, candidates).items():
        texts[number - 1] = text
    return make_sections((text, number, None) for number, text in enumerate(texts, start=1))


def _content_size(path: Path, number: int, page: object) -> int:
    """Bytes of the page's decoded drawing instructions; `DocumentError` past the bound."""
    contents = page.get_contents()  # type: ignore[attr-defined]
    size = len(contents.get_data()) if contents is not None else 0
    if size > MAX_PAGE_CONTENT_BYTES:
        raise DocumentError(path, f"refused: page {number} holds {size // (1024 * 1024)} MB "
                            "of drawing instructions, too much to read")
    return size


def _page_text(page: object) -> str:
    text = page.extract_text() or ""  # type: ignore[attr-defined]
    return text[:MAX_PAGE_CHARS]


def _table_pages(path: Path, data: bytes, candidates: set[int]) -> dict[int, str]:
    """Page number → text for pages with ruled tables: text outside them, then their rows."""
    import pdfplumber

    found: dict[int, str] = {}
    try:
        # An encrypted file got here only because its user password is empty.
        with pdfplumber.open(io.BytesIO(data), password="") as pdf:
            for number, page in enumerate(pdf.pages, start=1):
                if number not in candidates:
                    continue
                try:
                    text = _text_with_tables(page)
                finally:
                    page.close()  # drop the parsed objects before the next page
                if text is not None:
                    found[number] = text[:MAX_PAGE_CHARS]
    except Exception:  # noqa: BLE001 - tables are a bonus: pypdf's text stands without them
        logging.getLogger(__name__).info("table extraction failed for %s", path, exc_info=True)
    return found


def _text_with_tables(page: Any) -> str | None:
    """The page's text outside its ruled tables, then the tables' rows; None without tables."""
    if not (page.lines or page.rects):
        return None  # a ruled table is drawn with lines or rectangles
    tables = page.find_tables()
    if not tables:
        return None
    boxes = [t.bbox for t in tables]
    outside = page.filter(lambda obj: not _inside(obj, boxes))
    rows = [" | ".join(_cell(c) for c in row) for t in tables for row in t.extract() if any(row)]
    return (outside.extract_text() or "") + "\n\n" + "\n".join(rows)


def _cell(value: str | None) -> str:
    return " ".join((value or "").split())


def _inside(obj: dict, boxes: list[tuple[float, float, float, float]]) -> bool:
    if "x0" not in obj or "top" not in obj:
        return False
    cx = (obj["x0"] + obj["x1"]) / 2
    cy = (obj["top"] + obj["bottom"]) / 2
    return any(x0 <= cx <= x1 and top <= cy <= bottom for x0, top, x1, bottom in boxes)
