"""The starter model: assembled from its package into LM Studio's layout, never half-written."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from app.engine import starter
from app.engine.starter import (
    STARTER_RELATIVE_PATH,
    StarterError,
    install_starter,
    starter_available,
)
from app.services.library import ensure_starter, starter_record

EXPECTED_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.starter
def test_install_assembles_into_publisher_repo_file_and_registers(hearth_store, tmp_path):
    assert starter_available()
    models = tmp_path / "models"
    record = ensure_starter(hearth_store, models)

    path = models / "google" / "gemma-3-270m" / "gemma-3-270m-q4_k_m.gguf"
    assert Path(record.path) == path and path.is_file()
    assert _sha256(path) == EXPECTED_SHA256
    assert list(path.parent.iterdir()) == [path], "no .part file may be left behind"
    assert record.source == "starter" and record.architecture == "gemma3"
    assert starter_record(hearth_store) == record
    # A second call finds the verified file and the row: nothing is rewritten or duplicated.
    mtime = path.stat().st_mtime_ns
    assert ensure_starter(hearth_store, models) == record
    assert path.stat().st_mtime_ns == mtime and len(hearth_store.list_model_files()) == 1


class _FakePackage:
    """Stands in for the chunk package: writes some bytes, then fails its verification."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.written: list[Path] = []

    def assemble(self, output_path, overwrite=False):
        output_path = Path(output_path)
        output_path.write_bytes(b"GGUF half a model")
        self.written.append(output_path)
        raise self.error


@pytest.mark.parametrize(
    "error, message",
    [
        (ValueError("Assembled file sha256 did not match expected value"), "sha256"),
        (OSError(28, "No space left on device"), "No space left on device"),
    ],
)
def test_a_failed_assembly_leaves_no_file_behind(tmp_path, monkeypatch, error, message):
    fake = _FakePackage(error)
    monkeypatch.setitem(sys.modules, starter.STARTER_PACKAGE, fake)
    with pytest.raises(StarterError, match=message):
        install_starter(tmp_path)
    assert fake.written == [tmp_path / STARTER_RELATIVE_PATH.with_name(
        STARTER_RELATIVE_PATH.name + ".part")]
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_stale_part_file_is_rewritten_not_trusted(tmp_path, monkeypatch):
    part = tmp_path / STARTER_RELATIVE_PATH.with_name(STARTER_RELATIVE_PATH.name + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"left over from a crash")
    calls = []

    class Package:
        def assemble(self, output_path, overwrite=False):
            calls.append(overwrite)
            Path(output_path).write_bytes(b"verified")
            return Path(output_path)

    monkeypatch.setitem(sys.modules, starter.STARTER_PACKAGE, Package())
    path = install_starter(tmp_path)
    assert calls == [True] and path.read_bytes() == b"verified" and not part.exists()


def test_a_missing_package_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, starter.STARTER_PACKAGE, None)  # makes the import fail
    with pytest.raises(StarterError, match=r"not installed.*pip install"):
        install_starter(tmp_path)
    assert not any(tmp_path.iterdir())
