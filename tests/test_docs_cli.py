"""`hearth docs add|list|remove|search` end to end on a real SQLite file and the real
all-MiniLM-L6-v2 model, and a kill part way through `hearth docs add` (a real subprocess)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from document_files import write_pdf

from app.cli import main
from app.models.store import Store


def _notes(root: Path) -> Path:
    folder = root / "notes"
    folder.mkdir()
    (folder / "garden.md").write_text("# Garden\n\nTomatoes need deep watering twice a week.")
    (folder / "boats.txt").write_text("Sailing boats tack by turning the bow through the wind.")
    (folder / "evil.txt").write_text("Ignore this \x1b]0;pwned\x07 and the escape \x1b[2J too.")
    write_pdf(folder / "manual.pdf", ["Unpack the box.", "The reset button is under the foot.",
                                      "Warranty terms."])
    (folder / "broken.pdf").write_bytes((folder / "manual.pdf").read_bytes()[:200])
    return folder


def _collection(home: Path, embedding_model: Path, size: int = 256, overlap: int = 32) -> None:
    store = Store.open(home / "hearth.db")
    try:
        store.create_collection("notes", str(embedding_model), size, overlap)
    finally:
        store.close()


def test_docs_commands_end_to_end(hearth_home: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = _notes(tmp_path)
    # No collection yet: it is made with the starter embedding model, converted into the
    # models folder and added to the library.
    assert main(["docs", "add", "notes", str(folder)]) == 1  # one file failed
    out = capsys.readouterr().out
    assert "4 indexed" in out and "1 failed" in out
    assert f"failed: {folder / 'broken.pdf'}: " in out
    store = Store.open(hearth_home / "hearth.db")
    try:
        collection = store.find_collection("notes")
        assert collection is not None
        assert Path(collection.embedding_model).is_relative_to(hearth_home / "models")
        assert store.get_model_file_by_path(collection.embedding_model) is not None
    finally:
        store.close()

    assert main(["docs", "search", "notes", "where is the reset button", "--json", "-k", "2"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert len(found) <= 2
    assert (Path(found[0]["file"]).name, found[0]["page"]) == ("manual.pdf", 2)
    assert "reset button" in found[0]["text"] and found[0]["score"] > 0.25

    assert main(["docs", "search", "notes", "escape"]) == 0
    printed = capsys.readouterr().out
    assert "evil.txt" in printed and "\x1b" not in printed  # document text is shown inert

    assert main(["docs", "list"]) == 0
    assert "notes  5 documents (1 failed)" in capsys.readouterr().out
    assert main(["docs", "list", "notes"]) == 0
    listed = capsys.readouterr().out
    assert "broken.pdf  failed: " in listed and "garden.md  1 chunks" in listed

    assert main(["docs", "remove", "notes", str(folder / "garden.md")]) == 0
    capsys.readouterr()
    assert main(["docs", "list", "notes"]) == 0
    assert "garden.md" not in capsys.readouterr().out
    assert main(["docs", "remove", "notes"]) == 0
    assert main(["docs", "list", "notes"]) == 1
    assert "no collection 'notes'" in capsys.readouterr().err


def test_a_killed_docs_add_resumes_without_re_embedding(hearth_home: Path,
                                                        embedding_model: Path,
                                                        tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(20):
        (folder / f"doc{n:02d}.txt").write_text(f"Record {n} of the lighthouse keeper. " * 15)
    _collection(hearth_home, embedding_model, size=32, overlap=4)
    env = {**os.environ, "HEARTH_HOME": str(hearth_home)}
    command = [sys.executable, "-m", "app", "docs", "add", "notes", str(folder)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    store = Store.open(hearth_home / "hearth.db")
    try:
        collection = store.find_collection("notes")
        assert collection is not None
        deadline = time.monotonic() + 60
        while not [d for d in store.list_documents(collection.id) if d.status == "indexed"]:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
        before = {d.path: d.indexed_at for d in store.list_documents(collection.id)}
        assert 1 <= len(before) < 20  # killed part way
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert f"{20 - len(before)} indexed" in done.stdout
        assert f"{len(before)} unchanged" in done.stdout
        after = {d.path: d for d in store.list_documents(collection.id)}
        assert len(after) == 20 and all(d.status == "indexed" for d in after.values())
        # Finished before the kill: stored once, never embedded again.
        assert all(after[path].indexed_at == at for path, at in before.items())
    finally:
        store.close()


def test_chat_with_docs_prints_the_mode_and_citations(hearth_home: Path, embedding_model: Path,
                                                      tiny_model: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    write_pdf(folder / "manual.pdf", ["Unpack the box.", "The reset button is under the foot.",
                                      "Warranty terms."])
    (folder / "long.txt").write_text("The harbour ledger lists every ship and cargo. " * 80)
    _collection(hearth_home, embedding_model)
    assert main(["docs", "add", "notes", str(folder)]) == 0
    capsys.readouterr()
    question = "Where is the reset button?"
    code = main(["chat", str(tiny_model), "--docs", "notes", "--prompt", question,
                 "--max-tokens", "4", "--ctx", "1024"])
    err = capsys.readouterr().err
    assert code == 0, err
    # The documents are far more than 70% of the context left: passages, and the user is
    # told why.
    assert "[documents: Retrieved" in err and "70%" in err
    assert "[1] manual.pdf, page 2: The reset button is under the foot." in err
    store = Store.open(hearth_home / "hearth.db")
    try:
        [chat] = store.list_chats()
        # The question is stored as typed; the documents went only to the model.
        question_row, reply = store.list_messages(chat.id)
        assert question_row.content == question
        # The reply keeps its sources, so the window shows them when the chat is opened there.
        assert reply.sources is not None and reply.sources.mode == "retrieval"
        assert reply.sources.citation(1).document_path == str(folder / "manual.pdf")
    finally:
        store.close()

    assert main(["chat", str(tiny_model), "--docs", "nope", "--prompt", "hi"]) == 1
    assert "no collection 'nope'" in capsys.readouterr().err
