"""Fuzzing the GGUF header: seeded mutations of a small valid file's header.

Every case goes through the header reader, `hearth info` and library import, and must end in a
valid ModelInfo or a clear one-line error: no crash, no hang over 2 s, and no allocation driven
by a declared length. ``HEARTH_FUZZ_CASES=50000`` runs more cases, ``HEARTH_FUZZ_SEED`` others;
a failure names its seed and case and keeps the file, so it can be replayed.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import signal
import struct
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import gguf
import numpy as np
import pytest

from app.cli import main as hearth
from app.engine.gguf.info import GGUFError, read_header_bytes, read_model_info
from app.engine.gguf.values import MAX_COUNT, MAX_LAYERS
from app.engine.types import ModelInfo
from app.services.library import import_path

CASES = int(os.environ.get("HEARTH_FUZZ_CASES", "2000"))
SEED = int(os.environ.get("HEARTH_FUZZ_SEED", "20261130"))
DEADLINE_S = 2.0
MAX_PEAK = 2 << 20  # bytes a read may allocate; the base file is ~76 KB
TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"

_WIDTH = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_INTERESTING = [0, 1, 2, 3, 7, 8, 9, 12, 13, 31, 32, 255, 256, 4095, 4096, 4097, 65535, 65536,
                2**22 + 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40, 2**62, 2**63 - 1, 2**63,
                2**64 - 1]


def _build_base(path: Path, template: str = TEMPLATE, name: str = "fuzz-base",
                description: str = "A model for fuzzing.") -> bytes:
    """A small valid model header using every value type, kept and skipped arrays, tensors."""
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name(name)
    writer.add_description(description)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_context_length(256)
    writer.add_embedding_length(16)
    writer.add_block_count(2)
    writer.add_feed_forward_length(32)
    writer.add_head_count([4, 4])  # per layer, as some architectures write it
    writer.add_head_count_kv(2)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_sliding_window(64)
    writer.add_bool("general.fuzz.flag", True)
    writer.add_int8("general.fuzz.i8", -3)
    writer.add_int16("general.fuzz.i16", -300)
    writer.add_uint16("general.fuzz.u16", 300)
    writer.add_int64("general.fuzz.i64", -(2**40))
    writer.add_float64("general.fuzz.f64", 0.5)
    writer.add_chat_template(template)
    writer.add_token_list(["<unk>", "<s>", "</s>", "a", "b", "c", "ab", "abc"])
    writer.add_token_scores([0.0] * 8)
    writer.add_array("general.fuzz.skipped_strings", [f"s{i}" for i in range(4200)])
    writer.add_array("general.fuzz.skipped_bytes", [i % 200 for i in range(5000)])
    rng = np.random.default_rng(0)
    writer.add_tensor("token_embd.weight", rng.standard_normal((8, 16)).astype(np.float16))
    for i in range(2):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(16, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.attn_q.weight",
                          rng.standard_normal((16, 16)).astype(np.float16))
    writer.add_tensor("output_norm.weight", np.ones(16, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def _fields(data: bytes) -> dict[str, tuple[int, int]]:
    """Name → (offset, width) of every number in a valid little-endian header: counts, lengths,
    value types, scalar values, dimensions, tensor types and offsets. Written from the spec,
    independently of the reader under test."""
    out: dict[str, tuple[int, int]] = {"n_tensors": (8, 8), "n_kv": (16, 8)}
    n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)
    pos = 24

    def string(name: str) -> str:
        nonlocal pos
        out[name] = (pos, 8)
        (length,) = struct.unpack_from("<Q", data, pos)
        pos += 8 + length
        return data[pos - length : pos].decode()

    def number(name: str, width: int) -> None:
        nonlocal pos
        out[name] = (pos, width)
        pos += width

    for _ in range(n_kv):
        key = string("key-length")  # one name per key below; this one is overwritten
        out[f"{key}:key-length"] = out.pop("key-length")
        (value_type,) = struct.unpack_from("<I", data, pos)
        number(f"{key}:type", 4)
        if value_type == 8:
            string(f"{key}:length")
        elif value_type == 9:
            (item_type,) = struct.unpack_from("<I", data, pos)
            number(f"{key}:item-type", 4)
            (n,) = struct.unpack_from("<Q", data, pos)
            number(f"{key}:count", 8)
            for i in range(n):
                if item_type == 8:
                    string(f"{key}:{i}:length")
                else:
                    number(f"{key}:{i}", _WIDTH[item_type])
        else:
            number(f"{key}:value", _WIDTH[value_type])
    for _ in range(n_tensors):
        name = string("name-length")
        out[f"{name}:name-length"] = out.pop("name-length")
        (n_dims,) = struct.unpack_from("<I", data, pos)
        number(f"{name}:n_dims", 4)
        for d in range(n_dims):
            number(f"{name}:dim{d}", 8)
        number(f"{name}:type", 4)
        number(f"{name}:offset", 8)
    out["header-end"] = (pos, 0)
    return out


def _put(data: bytearray, field: tuple[int, int], value: int) -> None:
    offset, width = field
    data[offset : offset + width] = (value % (1 << 8 * width)).to_bytes(width, "little")


def _targets(fields: dict[str, tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """The numbers grouped by key or tensor, so a 5,000-entry array is one target among ~40."""
    groups: dict[str, list[tuple[int, int]]] = {}
    for name, field in fields.items():
        groups.setdefault(name.split(":")[0], []).append(field)
    return list(groups.values())


def _mutate(rng: random.Random, base: bytes, targets: list[list[tuple[int, int]]],
            header_end: int) -> bytes:
    """One to four mutations: numbers set to edge values, bytes flipped, cut, inserted, removed."""
    data = bytearray(base)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        kind = rng.random()
        if kind < 0.45:
            offset, width = field = rng.choice(rng.choice(targets))
            old = int.from_bytes(data[offset : offset + width], "little")
            value = rng.choice([*_INTERESTING, old + 1, old - 1, old * 2, len(data) - offset,
                                rng.getrandbits(8 * width)])
            _put(data, field, value)
        elif kind < 0.7:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(min(header_end, len(data)))] = rng.getrandbits(8)
        elif kind < 0.8:
            del data[rng.randrange(len(data)) if rng.random() < 0.3 else
                     rng.randrange(min(header_end, len(data))):]
        elif kind < 0.9:
            at = rng.randrange(min(header_end, len(data)))
            data[at:at] = rng.randbytes(rng.choice([1, 4, 8, rng.randint(1, 64)]))
        else:
            at = rng.randrange(min(header_end, len(data)))
            del data[at : at + rng.randint(1, 64)]
        if len(data) < 9:
            break
    return bytes(data)


class _Hang(Exception):
    pass


@contextlib.contextmanager
def _bounded(label: str, trace: bool = True) -> Iterator[None]:
    """Fail ``label`` if it runs over DEADLINE_S (interrupting it) or, when ``trace``, if it
    allocates over MAX_PEAK (tracing makes allocations ~5x slower, so the fuzz loop samples)."""
    def on_alarm(_signum: int, _frame: object) -> None:
        raise _Hang(f"{label} ran over {DEADLINE_S} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    was_tracing = tracemalloc.is_tracing()
    if trace and not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    signal.setitimer(signal.ITIMER_REAL, DEADLINE_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        peak = tracemalloc.get_traced_memory()[1] - before
        if not was_tracing:
            tracemalloc.stop()
    assert peak < MAX_PEAK, f"{label} allocated {peak:,} bytes"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _build_base(tmp_path_factory.mktemp("fuzz-base") / "base.gguf")


def _check_info(info: ModelInfo, on_disk: bool = True) -> None:
    """What the rest of Hearth may rely on in a ModelInfo, however odd the file."""
    counts = (info.context_length, info.block_count, info.embedding_length, info.head_count,
              info.head_count_kv, info.parameter_count, info.other_tensor_bytes)
    assert all(isinstance(n, int) and n >= 0 for n in counts), info
    assert max(info.context_length, info.embedding_length, info.head_count) <= MAX_COUNT
    assert info.block_count <= MAX_LAYERS and len(info.layer_tensor_bytes) <= MAX_LAYERS
    if on_disk:  # the tensor data is checked only where it is at hand
        assert sum(info.layer_tensor_bytes) + info.other_tensor_bytes <= info.file_size
    assert info.name.isprintable() and info.architecture.isprintable()
    assert info.has_chat_template == (info.chat_template is not None)


def _check_error(message: str, name: str) -> None:
    assert name in message and "\n" not in message and message.isprintable(), message


def test_seeded_mutations_read_or_fail_clearly(base: bytes, tmp_path: Path) -> None:
    fields = _fields(base)
    header_end = fields.pop("header-end")[0]
    targets = _targets(fields)
    rng = random.Random(SEED)
    folder = tmp_path / "cases"
    folder.mkdir()
    outcomes = {"ok": 0, "error": 0}
    for case in range(CASES):
        data = _mutate(rng, base, targets, header_end)
        path = folder / f"case-{case:05d}.gguf"
        path.write_bytes(data)
        where = f"seed {SEED} case {case} ({path})"
        with _bounded(f"reading {where}", trace=case % 8 == 0):
            try:
                info = read_model_info(path)
            except GGUFError as exc:
                _check_error(str(exc), path.name)
                outcomes["error"] += 1
            else:
                _check_info(info)
                outcomes["ok"] += 1
            # The Hub path reads the same bytes from memory.
            try:
                from_bytes, _shape = read_header_bytes(data, len(data), path.name)
            except GGUFError as exc:
                _check_error(str(exc), path.name)
            else:
                _check_info(from_bytes, on_disk=False)
    # Both outcomes are common: the mutations reach past the magic and into the fields.
    assert min(outcomes.values()) > CASES // 40, outcomes


def _cases(base: bytes, count: int) -> list[bytes]:
    fields = _fields(base)
    header_end = fields.pop("header-end")[0]
    rng = random.Random(SEED + 1)
    return [_mutate(rng, base, _targets(fields), header_end) for _ in range(count)]


def test_hearth_info_and_library_import_survive_mutations(base: bytes, tmp_path: Path,
                                                          hearth_store: object) -> None:
    """`hearth info` (in-process) and a folder import over the same mutated files."""
    folder = tmp_path / "cases"
    folder.mkdir()
    expected: dict[str, ModelInfo | None] = {}
    for case, data in enumerate(_cases(base, max(CASES // 10, 100))):
        path = folder / f"case-{case:05d}.gguf"
        path.write_bytes(data)
        try:
            expected[str(path)] = read_model_info(path)
        except GGUFError:
            expected[str(path)] = None
        out, err = io.StringIO(), io.StringIO()
        started = time.monotonic()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = hearth(["info", str(path)])
        assert time.monotonic() - started < DEADLINE_S, f"hearth info on case {case}"
        if expected[str(path)] is None:
            assert code == 1 and out.getvalue() == "", (case, out.getvalue())
            assert err.getvalue().startswith("hearth info: "), err.getvalue()
            _check_error(err.getvalue().rstrip("\n"), path.name)
        else:
            assert code == 0 and err.getvalue() == "", (case, err.getvalue())
            assert out.getvalue().startswith(expected[str(path)].name + "\n")
            assert "\x1b" not in out.getvalue()

    report = import_path(hearth_store, folder)
    good = {p for p, info in expected.items() if info is not None}
    assert {r.path for r in report.added} == good
    assert len(report.errors) == len(expected) - len(good)
    for message in report.errors:
        _check_error(message, ".gguf")
        assert "could not be read" not in message  # the catch-all for unexpected exceptions
    for record in report.added:
        assert (record.name, record.block_count) == (expected[record.path].name,
                                                    expected[record.path].block_count)
    assert len(hearth_store.list_model_files()) == len(good)


def _with(base: bytes, field: str, value: int) -> bytes:
    data = bytearray(base)
    _put(data, _fields(base)[field], value)
    return bytes(data)


@pytest.mark.parametrize("field", [
    "tokenizer.ggml.tokens:count",  # a kept string array
    "general.fuzz.skipped_strings:count",  # a skipped string array
    "general.fuzz.skipped_bytes:count",
    "tokenizer.ggml.scores:count",
    "n_tensors",
    "n_kv",
    "token_embd.weight:dim0",
    "tokenizer.chat_template:length",
])
def test_a_2_to_the_40_declared_length_is_refused_not_allocated(
        base: bytes, tmp_path: Path, field: str) -> None:
    path = tmp_path / "huge.gguf"
    path.write_bytes(_with(base, field, 2**40))
    with _bounded(field), pytest.raises(GGUFError, match="truncated or corrupt"):
        read_model_info(path)


def test_absurd_layer_and_context_counts_are_refused(base: bytes, tmp_path: Path) -> None:
    """A 2^31-layer model would make the memory estimate loop for hours; a negative context
    would reach the database and the load settings."""
    negative_context = bytearray(_with(base, "llama.context_length:type", 5))  # INT32
    _put(negative_context, _fields(base)["llama.context_length:value"], -1)
    absurd = {"llama.block_count": _with(base, "llama.block_count:value", 2**31),
              "llama.context_length": bytes(negative_context)}
    for key, data in absurd.items():
        path = tmp_path / "absurd.gguf"
        path.write_bytes(data)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            assert hearth(["info", str(path)]) == 1
        assert key in err.getvalue() and "truncated or corrupt" in err.getvalue()


def test_a_chat_template_too_large_to_keep_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big-template.gguf"
    _build_base(path, template="{{ messages }}" + " " * (2 << 20))
    with _bounded("a 2 MB template"), pytest.raises(GGUFError, match="chat template larger"):
        read_model_info(path)


def test_other_over_long_strings_are_skipped_not_read(tmp_path: Path) -> None:
    """A 4 MB description is not decoded or kept, and the model still reads."""
    path = tmp_path / "big-description.gguf"
    _build_base(path, description="x" * (4 << 20))
    with _bounded("a 4 MB description"):
        info = read_model_info(path)
    assert (info.name, info.block_count, info.chat_template) == ("fuzz-base", 2, TEMPLATE)


def test_terminal_escapes_in_a_model_name_are_not_printed(tmp_path: Path) -> None:
    path = tmp_path / "escape.gguf"
    _build_base(path, name="evil\x1b]0;pwned\x07\x1b[2J\u202ename")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert hearth(["info", str(path)]) == 0
    assert out.getvalue().startswith("evil]0;pwned[2Jname\n")
    assert not any(ch in out.getvalue() for ch in "\x1b\x07\u202e")
