"""Model files keep their GGUF header values as one JSON value (migration 0006): a library made
by the 0005 schema comes through the upgrade (and back down) with every value the same."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.engine.gguf.info import read_model_info
from app.engine.types import ModelInfo
from app.models.migrations import migrate_to
from app.models.store import Store

_ADDED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
_OLD_COLUMNS = [name for name in ModelInfo.__dataclass_fields__]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hearth.db"


def _insert_0005_row(db_path: Path, info: ModelInfo, source: str) -> None:
    """A model file row as the 0005 schema held it: one column per ModelInfo field."""
    values = info.to_dict()
    values["layer_tensor_bytes"] = json.dumps(values["layer_tensor_bytes"])
    names = [*_OLD_COLUMNS, "source", "added_at"]
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            f"INSERT INTO model_files ({', '.join(names)}) "
            f"VALUES ({', '.join('?' * len(names))})",
            [*(values[name] for name in _OLD_COLUMNS), source, "2026-01-02 03:04:05"],
        )
    conn.close()


def _columns(db_path: Path) -> set[str]:
    with sqlite3.connect(db_path) as conn:
        names = {row[1] for row in conn.execute("PRAGMA table_info(model_files)")}
    conn.close()
    return names


def _library(tiny_model: Path) -> list[tuple[ModelInfo, str]]:
    real = read_model_info(tiny_model)
    odd = ModelInfo(
        path="/models/ünïcode/Big Model.gguf", file_size=80_000_000_000, architecture="gemma3",
        name="Big “quoted” model", parameter_count=70_000_000_000, file_type="Q4_K_M",
        context_length=131_072, block_count=80, embedding_length=8192, head_count=64,
        head_count_kv=8, has_chat_template=True, chat_template="{{ messages[0]['content'] }}",
        sliding_window=4096, layer_tensor_bytes=[2**33, 2**33 + 1], other_tensor_bytes=2**35,
    )
    bare = replace(real, path="/models/bare.gguf", has_chat_template=False, chat_template=None,
                   sliding_window=None, layer_tensor_bytes=[], other_tensor_bytes=0)
    return [(real, "import"), (odd, "download"), (bare, "quantize")]


def test_upgrade_from_0005_keeps_every_model_file_value(db_path: Path, tiny_model: Path) -> None:
    migrate_to(db_path, "0005_message_tree")
    library = _library(tiny_model)
    for info, source in library:
        _insert_0005_row(db_path, info, source)

    with Store.open(db_path) as store:
        records = store.list_model_files()
        assert [(r.info, r.source, r.added_at) for r in records] == [
            (info, source, _ADDED_AT) for info, source in sorted(library, key=lambda x: x[0].path)
        ]
        real_info = library[0][0]
        found = store.get_model_file_by_path(real_info.path)
        assert found is not None and found.info == real_info and found.file_size > 0
        # The path is still unique: importing a known file again refreshes its row in place.
        again = store.add_model_file(replace(real_info, name="renamed"), source="indexed")
        assert (again.id, again.added_at, again.name) == (found.id, _ADDED_AT, "renamed")
        assert len(store.list_model_files()) == len(library)
        assert store.integrity_ok()
    assert _columns(db_path) == {"id", "path", "source", "added_at", "info"}


def test_downgrade_to_0005_gives_the_columns_back(db_path: Path, tiny_model: Path) -> None:
    library = _library(tiny_model)
    with Store.open(db_path) as store:
        for info, source in library:
            store.add_model_file(info, source)
        before = store.list_model_files()

    migrate_to(db_path, "0005_message_tree", down=True)
    assert "info" not in _columns(db_path) and set(_OLD_COLUMNS) <= _columns(db_path)
    with sqlite3.connect(db_path) as conn:
        conn.row_factory = sqlite3.Row
        rows = {row["path"]: row for row in conn.execute("SELECT * FROM model_files")}
    conn.close()
    for info, _source in library:
        row = rows[info.path]
        assert row["name"] == info.name and row["file_size"] == info.file_size
        assert bool(row["has_chat_template"]) is info.has_chat_template
        assert json.loads(row["layer_tensor_bytes"]) == info.layer_tensor_bytes

    with Store.open(db_path) as store:  # and up again, unchanged
        assert store.list_model_files() == before


def test_info_written_by_another_version_still_lists(db_path: Path, tiny_model: Path) -> None:
    real = read_model_info(tiny_model)
    with Store.open(db_path) as store:
        store.add_model_file(real)
        store.add_model_file(replace(real, path="/models/damaged.gguf"))
        store.add_model_file(replace(real, path="/models/garbled.gguf"))
        store.add_model_file(replace(real, path="/models/newer.gguf"))
    with sqlite3.connect(db_path) as conn:
        # A newer field is ignored; a field with a default may be missing.
        newer = real.to_dict() | {"vocab_size": 32000}
        del newer["path"], newer["other_tensor_bytes"], newer["sliding_window"]
        conn.execute("UPDATE model_files SET info = ? WHERE path = '/models/newer.gguf'",
                     (json.dumps(newer),))
        conn.execute("UPDATE model_files SET info = '{\"name\": \"x\"}' "
                     "WHERE path = '/models/damaged.gguf'")
        conn.execute("UPDATE model_files SET info = '{not json' "
                     "WHERE path = '/models/garbled.gguf'")
    conn.close()

    with Store.open(db_path) as store:
        records = {r.path: r for r in store.list_model_files()}
        # Damaged rows are left out instead of breaking the library (importing the file again
        # rewrites them); the others come back whole.
        assert set(records) == {str(tiny_model), "/models/newer.gguf"}
        assert records[str(tiny_model)].info == real
        assert records["/models/newer.gguf"].info == replace(
            real, path="/models/newer.gguf", other_tensor_bytes=0, sliding_window=None)
        for path in ("/models/damaged.gguf", "/models/garbled.gguf"):
            assert store.get_model_file_by_path(path) is None
            healed = store.add_model_file(replace(real, path=path))
            assert store.get_model_file_by_path(path) == healed and healed.info.path == path
