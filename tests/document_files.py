"""Real documents written by the tests: PDFs (reportlab, pypdf to encrypt), DOCX (python-docx),
EPUB (zipfile), so the readers meet the bytes real tools produce."""

from __future__ import annotations

import zipfile
from pathlib import Path

TABLE_ROWS = [["Model", "Size", "Licence"], ["MiniLM", "22 MB", "Apache-2.0"],
              ["Gemma", "253 MB", "Gemma terms"]]


def write_pdf(path: Path, pages: list[str], table_on_page: int | None = None) -> Path:
    """One page per text (paragraphs split on blank lines); a ruled table on ``table_on_page``."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Table, TableStyle

    style = getSampleStyleSheet()["BodyText"]
    story: list[object] = []
    for number, text in enumerate(pages, start=1):
        story.extend(Paragraph(p, style) for p in text.split("\n\n"))
        if number == table_on_page:
            table = Table(TABLE_ROWS)
            table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, (0, 0, 0))]))
            story.append(table)
        if number < len(pages):
            story.append(PageBreak())
    SimpleDocTemplate(str(path), pagesize=A4).build(story)
    return path


def encrypt_pdf(source: Path, target: Path, password: str) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password=password, owner_password="owner", algorithm="AES-128")
    with open(target, "wb") as f:
        writer.write(f)
    return target


def write_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_paragraph("Preface text before any heading.")
    document.add_heading("Installing", level=1)
    document.add_paragraph("Download the installer and run it.")
    document.add_heading("On Linux", level=2)
    document.add_paragraph("Use the AppImage on Linux machines.")
    table = document.add_table(rows=0, cols=3)
    for row in TABLE_ROWS:
        cells = table.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            cell.text = value
    document.add_heading("Using", level=1)
    document.add_paragraph("Open a chat and type a question.")
    document.save(str(path))
    return path


_CONTAINER = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>
</rootfiles></container>"""

_OPF = """<?xml version="1.0"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Book</dc:title></metadata>
<manifest>
<item id="c1" href="text/one.xhtml" media-type="application/xhtml+xml"/>
<item id="c2" href="text/two.xhtml" media-type="application/xhtml+xml"/>
</manifest>
<spine><itemref idref="c2"/><itemref idref="c1"/></spine>
</package>"""

_CHAPTER = """<?xml version="1.0" encoding="utf-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title>
<style>p {{ color: red }}</style></head>
<body><h1>{title}</h1><p>{text}</p></body></html>"""


def write_epub(path: Path) -> Path:
    """Spine order (two, then one) differs from file order, as real books often do."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr("META-INF/container.xml", _CONTAINER)
        zf.writestr("OEBPS/content.opf", _OPF)
        zf.writestr("OEBPS/text/one.xhtml",
                    _CHAPTER.format(title="Second Chapter", text="The ship sails at dawn."))
        zf.writestr("OEBPS/text/two.xhtml",
                    _CHAPTER.format(title="First Chapter", text="Call me Ishmael."))
    return path


def write_zip_bomb(path: Path, unpacked_mb: int = 64) -> Path:
    """A zip whose one member inflates ``unpacked_mb`` MB of zeros ~1000x (named .docx or .epub)."""
    zeros = b"\0" * (1024 * 1024)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("word/document.xml", "w", force_zip64=True) as member:
            for _ in range(unpacked_mb):
                member.write(zeros)
    return path


def write_huge_page_pdf(path: Path, unpacked_mb: int) -> Path:
    """A one-page PDF whose drawing instructions inflate to ``unpacked_mb`` MB (~1000x)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject

    writer = PdfWriter()
    page = writer.add_blank_page(200, 200)
    stream = DecodedStreamObject()
    stream.set_data(b"q Q\n" * (unpacked_mb * 256 * 1024))
    page.replace_contents(stream.flate_encode())
    with open(path, "wb") as f:
        writer.write(f)
    return path
