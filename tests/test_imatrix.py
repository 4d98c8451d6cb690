"""Importance-matrix files: reading both llama-imatrix formats and quantizing with one."""

from __future__ import annotations

import ctypes
import struct
from pathlib import Path

import numpy as np
import pytest

from app.engine.quantize.imatrix import ImatrixError, load_imatrix, to_c_array, write_imatrix
from app.testing.tiny_gguf import build_test_imatrix, truncate_copy


def test_gguf_round_trip_divides_sums_by_counts_per_expert(tmp_path: Path) -> None:
    path = write_imatrix(
        tmp_path / "m.imatrix",
        sums={
            "blk.0.attn_q.weight": np.array([2.0, 4.0, 6.0]),
            # Two experts; the first never saw input, so llama-quantize gives it weight 1.
            "blk.0.ffn_up_exps.weight": np.array([[5.0, 7.0], [3.0, 9.0]]),
        },
        counts={"blk.0.attn_q.weight": 2, "blk.0.ffn_up_exps.weight": [0, 3]},
        dataset="wiki.train.raw", chunks=7,
    )

    imatrix = load_imatrix(path)

    assert imatrix.path == path
    assert imatrix.dataset == "wiki.train.raw"
    assert imatrix.chunks == 7
    assert set(imatrix.entries) == {"blk.0.attn_q.weight", "blk.0.ffn_up_exps.weight"}
    np.testing.assert_allclose(imatrix.entries["blk.0.attn_q.weight"], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(imatrix.entries["blk.0.ffn_up_exps.weight"], [1.0, 1.0, 1.0, 3.0])
    assert all(v.dtype == np.float32 for v in imatrix.entries.values())


def _legacy_entry(name: str, ncall: int, values: list[float]) -> bytes:
    raw = name.encode()
    return (struct.pack("<i", len(raw)) + raw + struct.pack("<ii", ncall, len(values))
            + struct.pack(f"<{len(values)}f", *values))


def test_legacy_dat_file_is_read_and_divided_by_ncall(tmp_path: Path) -> None:
    body = (struct.pack("<i", 2) + _legacy_entry("blk.0.attn_k.weight", 4, [4.0, 8.0])
            + _legacy_entry("output.weight", 0, [0.5, 1.5]))
    trailer = struct.pack("<ii", 10, len(b"calib.txt")) + b"calib.txt"
    path = tmp_path / "imatrix.dat"
    path.write_bytes(body + trailer)

    imatrix = load_imatrix(path)

    np.testing.assert_allclose(imatrix.entries["blk.0.attn_k.weight"], [1.0, 2.0])
    # ncall 0 means "unknown", and llama-quantize then uses the values as stored.
    np.testing.assert_allclose(imatrix.entries["output.weight"], [0.5, 1.5])
    assert (imatrix.dataset, imatrix.chunks) == ("calib.txt", 10)

    # Older legacy files stop after the entries.
    path.write_bytes(body)
    old = load_imatrix(path)
    assert (old.dataset, old.chunks) == (None, None)
    assert set(old.entries) == {"blk.0.attn_k.weight", "output.weight"}


def test_files_that_are_not_an_imatrix_are_refused_by_name(
    tmp_path: Path, tiny_model: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello world, these are not activations\n")
    good = write_imatrix(tmp_path / "good.imatrix", {"a.weight": np.ones(256)}, {"a.weight": 1})
    truncated = truncate_copy(good, tmp_path / "cut.imatrix", keep_fraction=0.5)
    legacy = tmp_path / "cut.dat"
    legacy.write_bytes(struct.pack("<i", 1) + _legacy_entry("a.weight", 1, [1.0, 2.0])[:-4])
    nan = write_imatrix(tmp_path / "nan.imatrix", {"a.weight": [1.0, np.nan]}, {"a.weight": 1})
    empty = tmp_path / "empty.dat"
    empty.write_bytes(b"")

    cases = {
        tiny_model: "model file",
        text: "not an importance matrix",
        truncated: "truncated",
        legacy: "ends early",
        nan: "NaN",
        empty: "not an importance matrix",
        tmp_path / "missing.imatrix": "Cannot read",
    }
    for path, reason in cases.items():
        with pytest.raises(ImatrixError) as info:
            load_imatrix(path)
        assert path.name in str(info.value)
        assert reason in str(info.value)


def test_c_array_is_null_terminated_and_points_at_the_values(tmp_path: Path) -> None:
    import llama_cpp

    path = write_imatrix(tmp_path / "m.imatrix", {"b.weight": [2.0, 6.0], "a.weight": [1.0]},
                         {"b.weight": 2, "a.weight": 1})
    arr, keep = to_c_array(load_imatrix(path))

    assert keep is not None
    assert len(arr) == 3 and arr[2].name is None
    ptr = ctypes.cast(arr, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
    got = {ptr[i].name: list(ptr[i].data[: ptr[i].size]) for i in range(2)}
    assert got == {b"a.weight": [1.0], b"b.weight": [1.0, 3.0]}


def _quantize(src: Path, dst: Path, imatrix: Path | None) -> int:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_IQ2_XS
    params.nthread = 2
    keep = None
    if imatrix is not None:
        arr, keep = to_c_array(load_imatrix(imatrix))
        params.imatrix = ctypes.cast(arr, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
    rc = llama_cpp.llama_model_quantize(
        str(src).encode(), str(dst).encode(), ctypes.byref(params)
    )
    del keep
    return int(rc)


def test_iq2_xs_needs_the_imatrix_and_works_with_it(
    tmp_path: Path, quantizable_models: dict[str, Path]
) -> None:
    import gguf
    import llama_cpp

    from app.engine.inference import llama_log

    llama_log.install()
    model = quantizable_models["f16"]
    imatrix = build_test_imatrix(model, tmp_path / "tiny.imatrix")

    llama_log.take_recent_errors()
    assert _quantize(model, tmp_path / "plain.gguf", None) != 0
    assert "requires an imatrix" in " ".join(llama_log.take_recent_errors())

    out = tmp_path / "iq2_xs.gguf"
    assert _quantize(model, out, imatrix) == 0
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(out).tensors}
    assert "IQ2_XS" in types.values()
    llm = llama_cpp.Llama(str(out), verbose=False, n_ctx=64)
    try:
        result = llm("hello", max_tokens=2)
        assert result["usage"]["completion_tokens"] >= 1
    finally:
        llm.close()
