"""Split GGUF models and vision projectors: one set of name rules for the Hub listing, the folder
scan and download registration; a split model is listed only when whole and deleted whole."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fake_hub import FakeHub, FakeRepo, Faults

from app.engine.gguf.names import is_mmproj, part_name, split_part, split_siblings
from app.engine.hub.api import file_targets, list_gguf_files
from app.engine.hub.downloads import DownloadEvent, DownloadManager, part_path
from app.engine.paths import data_paths
from app.services.downloaded import library_callback, register_download
from app.services.library import find_unindexed, import_path, remove_model

SPLIT_REPO = "splitorg/Split-GGUF"
PART1, PART2 = "split-Q4_0-00001-of-00002.gguf", "split-Q4_0-00002-of-00002.gguf"


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


@pytest.mark.parametrize(("name", "expected"), [
    ("m-00001-of-00003.gguf", (1, 3)), ("sub/m-Q4_K_M-00003-of-00003.GGUF", (3, 3)),
    ("m.gguf", None), ("m-00000-of-00002.gguf", None), ("m-00004-of-00003.gguf", None),
    ("m-0001-of-0003.gguf", None),
])
def test_split_part(name: str, expected: tuple[int, int] | None) -> None:
    assert split_part(name) == expected


def test_part_names_and_siblings(tmp_path: Path) -> None:
    assert part_name("q/m-00002-of-00003.gguf", 1) == "q/m-00001-of-00003.gguf"
    assert part_name("m.gguf", 2) == "m.gguf"
    assert split_siblings(tmp_path / "m-00002-of-00003.gguf") == [
        tmp_path / f"m-0000{k}-of-00003.gguf" for k in (1, 2, 3)]
    assert split_siblings(tmp_path / "m.gguf") == [tmp_path / "m.gguf"]


@pytest.mark.parametrize("name", ["mmproj-x-f16.gguf", "x-mmproj-f16.gguf", "x.mmproj.gguf",
                                  "model_mmproj_f16.gguf", "X-MMPROJ.gguf"])
def test_projector_names(name: str) -> None:
    assert is_mmproj(name)


def test_hub_and_folder_scan_agree_on_projectors(fake_hub: FakeHub, hearth_store,
                                                 tiny_model: Path, tmp_path: Path) -> None:
    fake_hub.add_file("tinyorg/Tiny-1B-GGUF", "model_mmproj_f16.gguf", tiny_model)
    listed = {f.name: f.kind for f in list_gguf_files("tinyorg/Tiny-1B-GGUF")}
    assert listed["model_mmproj_f16.gguf"] == "mmproj"

    folder = tmp_path / "lib"
    model = _copy(tiny_model, folder / "model-f16.gguf")
    projector = _copy(tiny_model, folder / "model_mmproj_f16.gguf")
    assert find_unindexed(hearth_store, [folder]) == [model]
    report = import_path(hearth_store, folder)
    assert [r.path for r in report.added] == [str(model)]
    assert f"{projector}: a vision projector (mmproj), not a language model" in report.skipped


def test_a_split_model_is_registered_when_its_last_part_lands(hearth_store, tiny_model: Path,
                                                              hearth_home: Path) -> None:
    folder = data_paths().models / "pub" / "repo"
    first = _copy(tiny_model, folder / PART1)
    later = folder / PART2
    _copy(tiny_model, part_path(later))  # part 2 still downloading
    assert register_download(hearth_store, first) == []
    assert hearth_store.list_model_files() == []

    part_path(later).replace(later)
    assert register_download(hearth_store, later) == []
    [record] = hearth_store.list_model_files()
    assert record.path == str(first) and record.source == "download"


def test_a_download_again_refreshes_the_row(hearth_store, tiny_model: Path,
                                            tiny_chat_model: Path, hearth_home: Path) -> None:
    dest = _copy(tiny_model, data_paths().models / "pub" / "repo" / "m.gguf")
    assert register_download(hearth_store, dest) == []
    assert hearth_store.list_model_files()[0].file_type == "F32"
    _copy(tiny_chat_model, dest)  # a newer file under the same name
    assert register_download(hearth_store, dest) == []
    [record] = hearth_store.list_model_files()
    assert record.file_type == "F16" and record.chat_template


def test_a_split_download_is_listed_only_when_every_part_is_done(
    fake_hub: FakeHub, hearth_store, hearth_home: Path, tiny_gguf_bytes: dict[str, bytes]
) -> None:
    fake_hub.add_repo(FakeRepo(SPLIT_REPO, {PART1: tiny_gguf_bytes["small"],
                                            PART2: tiny_gguf_bytes["big"]}))
    fake_hub.faults[PART2] = Faults(status=404)
    events: list[DownloadEvent] = []
    manager = DownloadManager(data_paths().models, events.append, backoff=0.01,
                              chunk_size=64 * 1024, on_complete=library_callback(hearth_store))
    try:
        keys = [manager.add(t) for t in file_targets(SPLIT_REPO, [PART1, PART2])]
        assert manager.wait(keys, timeout=20)
        assert [manager.status(k) for k in keys] == ["done", "failed"]
        assert hearth_store.list_model_files() == [], "part 2 failed: not a usable model"

        del fake_hub.faults[PART2]
        key = manager.add(file_targets(SPLIT_REPO, [PART2])[0])
        assert manager.wait([key], timeout=20) and manager.status(key) == "done"
    finally:
        manager.close()
    [record] = hearth_store.list_model_files()
    assert Path(record.path) == data_paths().models / "splitorg" / "Split-GGUF" / PART1


def test_deleting_a_split_model_deletes_every_part(hearth_store, tiny_model: Path,
                                                   hearth_home: Path) -> None:
    models = data_paths().models
    parts = [_copy(tiny_model, models / "pub" / "repo" / f"m-0000{k}-of-00003.gguf")
             for k in (1, 2, 3)]
    [record] = import_path(hearth_store, models).added
    assert record.path == str(parts[0])
    assert remove_model(hearth_store, record, delete_file=True) is True
    assert not any(p.exists() for p in parts)
    assert not (models / "pub").exists() and models.is_dir()
    assert hearth_store.list_model_files() == []
