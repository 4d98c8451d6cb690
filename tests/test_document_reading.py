"""Reading real files into positioned text: PDF pages and tables, DOCX/Markdown/HTML/EPUB
headings, source code blocks, and a clear reason (never a traceback) for every bad file."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from document_files import (
    encrypt_pdf,
    write_docx,
    write_epub,
    write_huge_page_pdf,
    write_pdf,
    write_zip_bomb,
)

from app.engine.documents import (
    MAX_FILE_BYTES,
    Document,
    DocumentError,
    content_hash,
    read_document,
)


def _positions_hold(doc: Document) -> None:
    text = doc.text
    for s in doc.sections:
        assert text[s.start:s.start + len(s.text)] == s.text


def _reason(path: Path) -> str:
    with pytest.raises(DocumentError) as err:
        read_document(path)
    assert err.value.path == str(path)
    return err.value.reason


@pytest.fixture
def pdf_with_table(tmp_path: Path) -> Path:
    return write_pdf(tmp_path / "guide.pdf",
                     ["Cats sleep sixteen hours a day.\n\nThey hunt at dusk.",
                      "Dogs were domesticated long ago.", "Parrots can live eighty years."],
                     table_on_page=2)


def test_pdf_pages_numbered_from_one_with_table_rows(pdf_with_table: Path) -> None:
    doc = read_document(pdf_with_table)
    assert doc.kind == "pdf"
    pages = {s.page: s.text for s in doc.sections}
    assert sorted(pages) == [1, 2, 3]
    assert "Cats sleep sixteen hours" in pages[1] and "hunt at dusk" in pages[1]
    assert "Dogs were domesticated" in pages[2]
    assert "Parrots" in pages[3] and "Parrots" not in pages[2]
    # The table's cells are rows of text, in order, on the page that holds the table.
    assert "Model | Size | Licence" in pages[2]
    assert "MiniLM | 22 MB | Apache-2.0" in pages[2]
    assert "Gemma | 253 MB | Gemma terms" in pages[2]
    assert "Licence" not in pages[1] + pages[3]
    _positions_hold(doc)


def test_encrypted_pdf_needs_a_password(pdf_with_table: Path, tmp_path: Path) -> None:
    locked = encrypt_pdf(pdf_with_table, tmp_path / "locked.pdf", "s3cret")
    assert _reason(locked) == "encrypted: needs a password"
    # Encrypted with an empty user password (common for "no copying" PDFs): readable.
    open_one = encrypt_pdf(pdf_with_table, tmp_path / "open.pdf", "")
    assert [s.page for s in read_document(open_one).sections] == [1, 2, 3]


def test_truncated_and_corrupt_pdfs_are_refused_with_a_reason(pdf_with_table: Path,
                                                               tmp_path: Path) -> None:
    data = pdf_with_table.read_bytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(data[: len(data) // 2])
    assert "truncated" in _reason(cut)
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    assert "corrupt" in _reason(garbage)


def test_docx_headings_paths_and_table(tmp_path: Path) -> None:
    doc = read_document(write_docx(tmp_path / "manual.docx"))
    assert doc.kind == "docx"
    by_heading = {s.heading: s.text for s in doc.sections}
    assert by_heading[None] == "Preface text before any heading."
    assert by_heading["Installing"] == "Download the installer and run it."
    linux = by_heading["Installing > On Linux"]
    assert linux.startswith("Use the AppImage")
    assert "MiniLM | 22 MB | Apache-2.0" in linux
    assert by_heading["Using"] == "Open a chat and type a question."
    _positions_hold(doc)


def test_markdown_heading_paths_ignore_code_fences(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("Intro line.\n\n# Guide\nStart here.\n\n## Setup\nRun it.\n\n```sh\n"
                    "# not a heading\nmake run\n```\n\n### Deep\nDeep text.\n\n## Use\n"
                    "Chat away.\n\nOther Title\n===========\nSetext body.\n")
    doc = read_document(path)
    assert doc.kind == "markdown"
    assert [(s.heading, s.text.splitlines()[0]) for s in doc.sections] == [
        (None, "Intro line."), ("Guide", "Start here."), ("Guide > Setup", "Run it."),
        ("Guide > Setup > Deep", "Deep text."), ("Guide > Use", "Chat away."),
        ("Other Title", "Setext body."),
    ]
    assert "# not a heading" in doc.sections[2].text
    _positions_hold(doc)


def test_html_drops_scripts_keeps_headings_and_never_interprets(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>T</title><style>body{color:red}</style>"
        "<script>alert('pwned')</script></head><body>"
        "<h1>Start</h1><p>Hello <b>world</b> &amp; friends.</p>"
        "<h2>Details</h2><p>Text &lt;script&gt;x&lt;/script&gt; shown as text.</p>"
        "<script type='module'>import('evil')</script><noscript>enable JS</noscript>"
        "<table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td>2</td></tr></table>"
        "<h1>Next</h1><p>Bell\x07 and \u202eReversed\u202c text.</p></body></html>")
    doc = read_document(path)
    everything = doc.text
    assert "alert" not in everything and "color:red" not in everything
    assert "evil" not in everything and "enable JS" not in everything
    sections = {s.heading: s.text for s in doc.sections}
    assert sections["Start"] == "Hello world & friends."
    assert "<script>x</script> shown as text." in sections["Start > Details"]
    assert "A | B\n1 | 2" in sections["Start > Details"]
    assert sections["Next"] == "Bell and Reversed text."  # controls and bidi overrides gone
    _positions_hold(doc)


def test_html_with_an_unclosed_head_still_reads_its_body(tmp_path: Path) -> None:
    path = tmp_path / "sloppy.htm"
    path.write_text("<html><head><title>Tab title<body><h3>Notes</h3>Body text<br>line two")
    doc = read_document(path)
    assert [(s.heading, s.text) for s in doc.sections] == [("Notes", "Body text\nline two")]


def test_deeply_nested_html_is_read_in_bounded_time(tmp_path: Path) -> None:
    path = tmp_path / "deep.html"
    path.write_text("<div>" * 200_000 + "<h2>Bottom</h2><p>found me</p>" + "</div>" * 200_000)
    started = time.monotonic()
    doc = read_document(path)
    assert time.monotonic() - started < 10
    assert [(s.heading, s.text) for s in doc.sections] == [("Bottom", "found me")]


def test_epub_chapters_follow_the_spine(tmp_path: Path) -> None:
    doc = read_document(write_epub(tmp_path / "book.epub"))
    assert doc.kind == "epub"
    assert [(s.heading, s.text) for s in doc.sections] == [
        ("First Chapter", "Call me Ishmael."), ("Second Chapter", "The ship sails at dawn.")]
    assert "color" not in doc.text


def test_source_code_sections_are_blank_line_blocks(tmp_path: Path) -> None:
    path = tmp_path / "tool.py"
    path.write_text("import os\n\n\ndef first():\n    return 1\n\n\nclass Second:\n    x = 2\n")
    doc = read_document(path)
    assert doc.kind == "code"
    assert [s.text for s in doc.sections] == [
        "import os", "def first():\n    return 1", "class Second:\n    x = 2"]
    _positions_hold(doc)


def test_plain_text_is_cleaned_and_legacy_encodings_read(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes("Caf\u00e9 cr\u00e8me\r\n\x1b[31mred\x1b[0m\tend\r\n".encode("cp1252"))
    doc = read_document(path)
    assert doc.kind == "text"
    assert doc.text == "Caf\u00e9 cr\u00e8me\n[31mred[0m\tend"


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("photo.txt", bytes(range(256)) * 64, "not a text file (binary content)"),
    ("empty.md", b"", "empty file"),
    ("blank.txt", b"  \n\n\t\n", "no text found"),
    ("archive.rar", b"Rar!\x1a\x07\x00", "unsupported file type '.rar'"),
    ("fake.docx", b"this is not a zip", "corrupt or truncated: not a readable zip archive"),
    ("fake.epub", b"PK\x03\x04 truncated", "corrupt or truncated: not a readable zip archive"),
])
def test_bad_files_get_a_clear_reason(tmp_path: Path, name: str, content: bytes,
                                      reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert _reason(path) == reason


def test_missing_file_and_file_too_big(tmp_path: Path) -> None:
    assert _reason(tmp_path / "gone.txt").startswith("cannot read the file")
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as f:  # sparse: costs no disk and no reading
        f.truncate(MAX_FILE_BYTES + 1)
    assert _reason(huge).startswith("too big: 200 MB")


@pytest.mark.parametrize("suffix", [".docx", ".epub"])
def test_zip_bombs_are_refused_before_unpacking(tmp_path: Path, suffix: str) -> None:
    bomb = write_zip_bomb(tmp_path / f"bomb{suffix}")
    started = time.monotonic()
    reason = _reason(bomb)
    assert time.monotonic() - started < 1
    assert "zip bomb" in reason


def test_content_hash_is_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"x" * 3_000_000)
    assert content_hash(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    path.write_bytes(b"x" * 2_999_999 + b"y")
    assert content_hash(path) == hashlib.sha256(b"x" * 2_999_999 + b"y").hexdigest()


@pytest.mark.parametrize(("unpacked_mb", "reason"), [
    (20, "refused: page 1 holds 20 MB of drawing instructions, too much to read"),
    (100, "refused: a page unpacks to more than pypdf's safety limit (a decompression bomb?)"),
])
def test_huge_pdf_pages_are_refused_quickly(tmp_path: Path, unpacked_mb: int,
                                            reason: str) -> None:
    path = write_huge_page_pdf(tmp_path / "huge.pdf", unpacked_mb)
    started = time.monotonic()
    assert _reason(path) == reason
    assert time.monotonic() - started < 5
