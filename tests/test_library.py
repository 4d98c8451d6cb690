"""The model library: import files and folders in place, bad files, other apps' folders, remove."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.engine.paths import data_paths
from app.models.presets import builtin_presets, seed_builtin_presets
from app.services.library import (
    find_unindexed,
    import_path,
    in_models_folder,
    iter_import,
    known_model_folders,
    remove_model,
)
from app.testing.tiny_gguf import truncate_copy


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def test_import_file_indexes_it_in_place(hearth_store, tiny_model):
    report = import_path(hearth_store, tiny_model)
    assert not report.errors and not report.skipped
    [record] = report.added
    assert record.path == str(tiny_model) and record.source == "import"
    assert record.architecture == "llama" and record.file_type == "F32"
    assert [r.path for r in hearth_store.list_model_files()] == [str(tiny_model)]
    assert not any(data_paths().models.rglob("*.gguf")), "a model must never be copied"


def test_importing_a_known_file_again_skips_it(hearth_store, tiny_model):
    import_path(hearth_store, tiny_model)
    report = import_path(hearth_store, tiny_model)
    assert report.added == [] and report.errors == []
    assert report.skipped == [f"{tiny_model}: already in the library"]
    assert len(hearth_store.list_model_files()) == 1


def test_import_folder_is_recursive_and_skips_partials_projectors_and_split_parts(
    hearth_store, tiny_model, tiny_chat_model, tmp_path
):
    folder = tmp_path / "lib"
    a = _copy(tiny_model, folder / "pub" / "repo-a" / "a.gguf")
    b = _copy(tiny_chat_model, folder / "pub" / "repo-b" / "deep" / "b.gguf")
    first = _copy(tiny_model, folder / "split" / "m-00001-of-00002.gguf")
    _copy(tiny_model, folder / "split" / "m-00002-of-00002.gguf")
    _copy(tiny_model, folder / "pub" / "repo-a" / "mmproj-a-f16.gguf")
    _copy(tiny_model, folder / "pub" / "repo-a" / "c.gguf.part")
    (folder / "notes.txt").write_text("not a model")

    steps = list(iter_import(hearth_store, [folder]))
    report = import_path(hearth_store, folder)  # second pass: everything is known

    assert [s.done for s in steps] == [1, 2, 3] and {s.total for s in steps} == {3}
    assert sorted(r.path for r in hearth_store.list_model_files()) == sorted(
        str(p) for p in (a, b, first)
    )
    assert report.added == [] and report.errors == []
    reasons = " ".join(report.skipped)
    assert "already in the library" in reasons
    assert "vision projector" in reasons and "later part of a split model" in reasons


@pytest.mark.parametrize(
    "content, message",
    [
        (b"hello, I am a text file\n", "is not a GGUF model file"),
        (b"", "is empty"),
    ],
)
def test_a_file_that_is_not_gguf_gives_an_error_and_adds_nothing(
    hearth_store, tmp_path, content, message
):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(content)
    report = import_path(hearth_store, bad)
    assert report.added == []
    [error] = report.errors
    assert message in error and str(bad) in error
    assert hearth_store.list_model_files() == []


def test_a_truncated_model_gives_an_error_and_adds_nothing(hearth_store, tiny_model, tmp_path):
    cut = truncate_copy(tiny_model, tmp_path / "cut.gguf", keep_fraction=0.5)
    report = import_path(hearth_store, cut)
    assert report.added == [] and "truncated or corrupt" in report.errors[0]
    assert hearth_store.list_model_files() == []


def test_a_folder_with_good_and_bad_files_imports_the_good_ones(hearth_store, tiny_model, tmp_path):
    _copy(tiny_model, tmp_path / "lib" / "good.gguf")
    (tmp_path / "lib" / "bad.gguf").write_text("nope")
    report = import_path(hearth_store, tmp_path / "lib")
    assert [Path(r.path).name for r in report.added] == ["good.gguf"]
    assert len(report.errors) == 1 and "bad.gguf" in report.errors[0]


def test_missing_path_empty_folder_and_unfinished_download(hearth_store, tiny_model, tmp_path):
    (tmp_path / "empty").mkdir()
    part = _copy(tiny_model, tmp_path / "x.gguf.part")
    for path, message in [
        (tmp_path / "nope.gguf", "No such file or folder"),
        (tmp_path / "empty", "No GGUF model files were found"),
        (part, "unfinished download"),
    ]:
        report = import_path(hearth_store, path)
        assert report.added == [] and message in report.errors[0]


def _fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    return home


def test_known_model_folders_lists_only_existing_ones(tmp_path, monkeypatch):
    home = _fake_home(tmp_path, monkeypatch)
    assert known_model_folders() == []
    lms = home / ".lmstudio" / "models"
    old_lms = home / ".cache" / "lm-studio" / "models"
    hub = home / ".cache" / "huggingface" / "hub"
    for folder in (lms, old_lms, hub):
        folder.mkdir(parents=True)
    assert known_model_folders() == [lms, old_lms, hub]


def test_known_model_folders_follow_hugging_face_variables(tmp_path, monkeypatch):
    _fake_home(tmp_path, monkeypatch)
    hf_home = tmp_path / "hf"
    (hf_home / "hub").mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    assert known_model_folders() == [hf_home / "hub"]
    cache = tmp_path / "elsewhere"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert known_model_folders() == [cache]


def test_find_unindexed_sees_lm_studio_and_hub_symlinks(hearth_store, tiny_model, tmp_path,
                                                        monkeypatch):
    home = _fake_home(tmp_path, monkeypatch)
    lms_file = _copy(tiny_model, home / ".lmstudio" / "models" / "pub" / "repo" / "m.gguf")
    # The hub cache keeps blobs without extension and links them from snapshots/.
    repo = home / ".cache" / "huggingface" / "hub" / "models--pub--repo"
    blob = _copy(tiny_model, repo / "blobs" / "0123abcd")
    link = repo / "snapshots" / "rev1" / "m-q4.gguf"
    link.parent.mkdir(parents=True)
    link.symlink_to(blob)

    found = find_unindexed(hearth_store, known_model_folders())
    assert found == [lms_file, link]
    import_path(hearth_store, lms_file, source="indexed")
    assert find_unindexed(hearth_store, known_model_folders()) == [link]
    record = import_path(hearth_store, link, source="indexed").added[0]
    assert record.path == str(link), "the readable snapshot path is kept, not the blob"


def test_remove_keeps_the_file_unless_asked_and_only_deletes_hearths_own(
    hearth_store, tiny_model, hearth_home
):
    models = data_paths().models
    own = _copy(tiny_model, models / "pub" / "repo" / "own.gguf")
    outside = import_path(hearth_store, tiny_model).added[0]
    mine = import_path(hearth_store, own).added[0]
    assert in_models_folder(own) and not in_models_folder(tiny_model)

    assert remove_model(hearth_store, outside, delete_file=True) is False
    assert tiny_model.exists(), "a file outside Hearth's models folder is never deleted"

    assert remove_model(hearth_store, mine, delete_file=True) is True
    assert not own.exists() and not (models / "pub").exists() and models.is_dir()
    assert hearth_store.list_model_files() == []


def test_remove_without_delete_keeps_the_file(hearth_store, tiny_model):
    own = _copy(tiny_model, data_paths().models / "p" / "r" / "keep.gguf")
    record = import_path(hearth_store, own).added[0]
    assert remove_model(hearth_store, record, delete_file=False) is False
    assert own.exists() and hearth_store.list_model_files() == []


def test_builtin_presets_are_seeded_and_user_presets_are_kept(hearth_store):
    names = [name for name, _prompt, _sampling in builtin_presets()]
    assert sorted(names) == sorted(
        ["Plain assistant", "Instruction prompting", "Chain of thought", "Tree of thought"]
    )
    hearth_store.upsert_preset("Chain of thought", "my own", None, builtin=False)
    seed_builtin_presets(hearth_store)
    seed_builtin_presets(hearth_store)  # idempotent
    presets = {p.name: p for p in hearth_store.list_presets()}
    assert presets["Chain of thought"].system_prompt == "my own"
    assert not presets["Chain of thought"].builtin
    tree = presets["Tree of thought"]
    assert tree.builtin and "experts" in tree.system_prompt
    assert presets["Plain assistant"].sampling is None
    assert presets["Instruction prompting"].sampling.temperature == pytest.approx(0.4)
