"""Importance-matrix (imatrix) files: read them the way llama-quantize does, hand them to llama.cpp.

Two formats exist, both written by llama.cpp's `llama-imatrix`:

- GGUF (current): `general.type = "imatrix"`, keys `imatrix.datasets` / `imatrix.chunk_count` /
  `imatrix.chunk_size`, and per weight a pair of F32 tensors `<weight>.in_sum2` (n_expert rows of
  per-column sums of squared activations) and `<weight>.counts` (n_expert rows of one count).
- legacy `.dat`: int32 entry count, then per entry int32 name length, name, int32 ncall,
  int32 nval, nval float32; optionally int32 chunk count, int32 dataset length, dataset name.

The conversion into per-column importances mirrors `load_imatrix` / `load_legacy_imatrix` in
llama.cpp's tools/quantize/quantize.cpp, so Hearth quantizes exactly as llama-quantize would.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_GGUF_MAGIC = b"GGUF"
_SUMS_SUFFIX = ".in_sum2"
_COUNTS_SUFFIX = ".counts"
_KV_DATASETS = "imatrix.datasets"
_KV_CHUNK_COUNT = "imatrix.chunk_count"
_KV_CHUNK_SIZE = "imatrix.chunk_size"


class ImatrixError(ValueError):
    """The file cannot be used as an importance matrix; the message is meant for the user."""


@dataclass(frozen=True)
class Imatrix:
    path: Path
    # tensor name -> float32 importance per column (per expert, flattened), as llama.cpp gets it
    entries: dict[str, np.ndarray]
    dataset: str | None
    chunks: int | None


def load_imatrix(path: str | Path) -> Imatrix:
    """Read a GGUF or legacy imatrix file; raise ImatrixError if it is not a usable one."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except IsADirectoryError as exc:
        raise ImatrixError(f"{path.name} is a folder, not an importance matrix file.") from exc
    except OSError as exc:
        raise ImatrixError(f"Cannot read {path.name}: {exc.strerror or exc}.") from exc
    if magic == _GGUF_MAGIC:
        imatrix = _load_gguf(path)
    else:
        imatrix = _load_legacy(path)
    _check_finite(imatrix)
    return imatrix


def write_imatrix(
    path: str | Path,
    sums: Mapping[str, np.ndarray],
    counts: Mapping[str, int | float | Sequence[float] | np.ndarray],
    *,
    dataset: str = "hearth",
    chunks: int = 1,
    chunk_size: int = 512,
) -> Path:
    """Write a GGUF imatrix as llama-imatrix does.

    `sums[name]` holds per-column sums of squared activations, shape (n_cols,) or
    (n_expert, n_cols); `counts[name]` is how many activations were summed, one number or one per
    expert. Loading divides one by the other.
    """
    import gguf

    path = Path(path)
    writer = gguf.GGUFWriter(str(path), arch="")
    # GGUFWriter always records an architecture; llama-imatrix files carry none.
    writer.kv_data[0].pop(gguf.Keys.General.ARCHITECTURE, None)
    writer.add_type("imatrix")
    writer.add_array(_KV_DATASETS, [dataset])
    writer.add_uint32(_KV_CHUNK_COUNT, chunks)
    writer.add_uint32(_KV_CHUNK_SIZE, chunk_size)
    # llama-imatrix sorts names so the file is deterministic.
    for name in sorted(sums):
        s = np.asarray(sums[name], dtype=np.float32)
        s = s.reshape(1, -1) if s.ndim == 1 else s
        if s.ndim != 2:
            raise ValueError(f"sums for {name} must be 1-D or 2-D, not {s.ndim}-D")
        c = np.asarray(counts[name], dtype=np.float32).reshape(-1)
        if c.size == 1:
            c = np.full(s.shape[0], c[0], dtype=np.float32)
        if c.size != s.shape[0]:
            raise ValueError(f"{name}: {c.size} counts for {s.shape[0]} experts")
        writer.add_tensor(name + _SUMS_SUFFIX, np.ascontiguousarray(s))
        writer.add_tensor(name + _COUNTS_SUFFIX, c.reshape(-1, 1))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def to_c_array(imatrix: Imatrix) -> tuple[ctypes.Array, object]:
    """Build the NULL-name-terminated llama_model_imatrix_data array llama.cpp reads.

    Returns the array and an object that owns the names and float buffers: keep it alive until
    llama_model_quantize returns, since llama.cpp only holds raw pointers into them.
    """
    import llama_cpp

    entry = llama_cpp.llama_model_imatrix_data
    arr = (entry * (len(imatrix.entries) + 1))()  # zero-filled, so the last one is the sentinel
    names: list[bytes] = []
    buffers: list[np.ndarray] = []
    for i, (name, values) in enumerate(sorted(imatrix.entries.items())):
        buf = np.ascontiguousarray(values, dtype=np.float32)
        raw = name.encode("utf-8")
        names.append(raw)
        buffers.append(buf)
        arr[i].name = raw
        arr[i].data = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        arr[i].size = buf.size
    return arr, (names, buffers)


def _load_gguf(path: Path) -> Imatrix:
    from gguf import GGMLQuantizationType, GGUFReader

    try:
        reader = GGUFReader(path)
    except Exception as exc:  # gguf raises ValueError, struct.error, IndexError... on bad bytes
        raise ImatrixError(
            f"{path.name} is a damaged or truncated GGUF file ({exc}), not a usable "
            "importance matrix."
        ) from exc

    def field(key: str) -> object:
        f = reader.get_field(key)
        return None if f is None else f.contents()

    file_type = field("general.type")
    pairs: dict[str, list[object]] = {}
    for t in reader.tensors:
        for suffix, slot in ((_SUMS_SUFFIX, 0), (_COUNTS_SUFFIX, 1)):
            if t.name.endswith(suffix):
                pairs.setdefault(t.name[: -len(suffix)], [None, None])[slot] = t
    if (file_type is not None and file_type != "imatrix") or not pairs:
        what = "a model file" if field("general.architecture") else "a GGUF file"
        raise ImatrixError(
            f"{path.name} is {what}, not an importance matrix: it has no "
            "<tensor>.in_sum2 / <tensor>.counts data."
        )

    entries: dict[str, np.ndarray] = {}
    for name in sorted(pairs):
        sums_t, counts_t = pairs[name]
        if sums_t is None or counts_t is None:
            missing = "counts" if counts_t is None else "in_sum2"
            raise ImatrixError(f"{path.name} is damaged: {name} has no {missing} tensor.")
        for t in (sums_t, counts_t):
            if t.tensor_type != GGMLQuantizationType.F32:
                raise ImatrixError(
                    f"{path.name} is not a valid importance matrix: {t.name} is stored as "
                    f"{t.tensor_type.name}, not F32."
                )
        # ggml shapes: in_sum2 is (n_cols, n_expert), counts is (1, n_expert).
        n_cols = int(sums_t.shape[0])
        n_expert = int(np.prod(sums_t.shape[1:])) if len(sums_t.shape) > 1 else 1
        sums = np.asarray(sums_t.data, dtype=np.float32).reshape(n_expert, n_cols)
        counts = np.asarray(counts_t.data, dtype=np.float32).reshape(-1)
        if counts.size != n_expert:
            raise ImatrixError(
                f"{path.name} is damaged: {name} has {counts.size} counts for {n_expert} "
                "experts."
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            values = sums / counts[:, None]
        # As llama-quantize: an expert that never saw input during calibration gets weight 1.
        values[counts <= 0] = 1.0
        entries[name] = values.reshape(-1).astype(np.float32)

    datasets = field(_KV_DATASETS)
    if isinstance(datasets, str):
        datasets = [datasets]
    dataset = datasets[0] if isinstance(datasets, list) and datasets else None
    chunks = field(_KV_CHUNK_COUNT)
    return Imatrix(path, entries, str(dataset) if dataset is not None else None,
                   int(chunks) if isinstance(chunks, int) else None)


def _load_legacy(path: Path) -> Imatrix:
    data = path.read_bytes()
    pos = 0
    not_imatrix = (
        f"{path.name} is not an importance matrix: it is neither a GGUF imatrix nor a "
        "legacy llama-imatrix .dat file"
    )

    def take(n: int, what: str) -> bytes:
        nonlocal pos
        if n < 0 or pos + n > len(data):
            raise ImatrixError(f"{not_imatrix} (it ends early while reading {what}).")
        chunk = data[pos:pos + n]
        pos += n
        return chunk

    def int32(what: str) -> int:
        return struct.unpack("<i", take(4, what))[0]

    n_entries = int32("the entry count")
    if n_entries < 1:
        raise ImatrixError(f"{not_imatrix} (it holds no entries).")
    entries: dict[str, np.ndarray] = {}
    for i in range(n_entries):
        what = f"entry {i + 1} of {n_entries}"
        raw_name = take(int32(what), what)
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            raise ImatrixError(f"{not_imatrix} (entry {i + 1} has no readable name).") from None
        ncall = int32(what)
        nval = int32(what)
        if nval < 1:
            raise ImatrixError(f"{not_imatrix} (entry {name!r} has no values).")
        values = np.frombuffer(take(4 * nval, what), dtype="<f4").astype(np.float32)
        # As llama-quantize: the stored sums are divided by the number of calls, when known.
        if ncall > 0:
            values = values / np.float32(ncall)
        entries[name] = values

    dataset: str | None = None
    chunks: int | None = None
    # Newer legacy files end with the chunk count and the dataset name.
    if pos < len(data):
        chunks = int32("the chunk count")
        raw_dataset = take(int32("the dataset name"), "the dataset name")
        dataset = raw_dataset.decode("utf-8", errors="replace")
        if pos != len(data):
            raise ImatrixError(f"{not_imatrix} (unexpected bytes after the data).")
    return Imatrix(path, entries, dataset, chunks)


def _check_finite(imatrix: Imatrix) -> None:
    # llama.cpp refuses non-finite importances; say so before a long quantize starts.
    for name, values in imatrix.entries.items():
        if not np.all(np.isfinite(values)):
            raise ImatrixError(
                f"{imatrix.path.name} holds invalid values (NaN or infinity) for {name}; "
                "recompute the importance matrix."
            )
