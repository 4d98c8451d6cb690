"""DOCX (python-docx: paragraphs, headings by style, tables) and EPUB (a zip of XHTML read in
the OPF spine's order). Both are zips, checked against bombs before anything is unpacked."""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from app.engine.documents.html_text import html_parts
from app.engine.documents.limits import open_zip
from app.engine.documents.text_clean import heading_path, make_sections, push_heading
from app.engine.documents.types import DocumentError, Section

_HEADING_STYLE = re.compile(r"^(?:heading|überschrift|titre)\s*(\d)$", re.IGNORECASE)


def read_docx(path: Path, data: bytes) -> list[Section]:
    import docx
    from docx.table import Table

    open_zip(path).close()
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # noqa: BLE001 - python-docx raises many types for bad packages
        raise DocumentError(path, "corrupt: not a readable Word document") from exc
    parts: list[tuple[str, int | None, str | None]] = []
    stack: list[tuple[int, str]] = []
    body: list[str] = []

    def flush() -> None:
        parts.append(("\n\n".join(body), None, heading_path(stack)))
        body.clear()

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            rows = (" | ".join(" ".join(c.text.split()) for c in row.cells) for row in block.rows)
            body.append("\n".join(r for r in rows if r.strip(" |")))
            continue
        style = block.style.name if block.style is not None else ""
        level = 1 if style == "Title" else _heading_level(style)
        if level and block.text.strip():
            flush()
            push_heading(stack, level, block.text)
        else:
            body.append(block.text)
    flush()
    return make_sections(parts)


def _heading_level(style: str) -> int:
    match = _HEADING_STYLE.match(style.strip())
    return int(match.group(1)) if match else 0


_OPF_NS = {"c": "urn:oasis:names:tc:opendocument:xmlns:container",
           "opf": "http://www.idpf.org/2007/opf"}


def read_epub(path: Path, data: bytes) -> list[Section]:
    with open_zip(path) as zf:
        try:
            container = ET.fromstring(zf.read("META-INF/container.xml"))
            rootfile = container.find(".//c:rootfile", _OPF_NS)
            if rootfile is None or not rootfile.get("full-path"):
                raise DocumentError(path, "corrupt EPUB: container names no package file")
            opf_path = rootfile.get("full-path", "")
            opf = ET.fromstring(zf.read(opf_path))
            manifest = {item.get("id"): item.get("href", "")
                        for item in opf.iterfind(".//opf:manifest/opf:item", _OPF_NS)}
            base = posixpath.dirname(opf_path)
            parts: list[tuple[str, int | None, str | None]] = []
            for ref in opf.iterfind(".//opf:spine/opf:itemref", _OPF_NS):
                href = manifest.get(ref.get("idref"))
                if not href:
                    continue
                name = posixpath.normpath(posixpath.join(base, href.split("#")[0]))
                markup = zf.read(name).decode("utf-8", errors="replace")
                parts.extend(html_parts(markup))
        except (KeyError, ET.ParseError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
            raise DocumentError(path, f"corrupt EPUB ({exc})") from exc
    return make_sections(parts)

