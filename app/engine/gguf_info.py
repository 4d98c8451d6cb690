"""Read what a GGUF file says about its model, without loading the weights.

The header is parsed here rather than with ``gguf.GGUFReader``: the reader materialises every
vocabulary string as a numpy array, which for Gemma 3's 262k-token vocabulary takes ~8 s and
~700 MB. This parser keeps only scalars and short arrays and skips the vocabulary, so reading a
model costs a fraction of a second and a few MB whatever its size. The ``gguf`` package still
supplies the type tables (value types, tensor types and their sizes, file types).
Everything a user can get wrong (a missing path, a folder, a text file, a truncated download)
becomes a ``GGUFError`` with a readable message.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

from app.engine.types import ModelInfo, ModelShape

_MAGIC = b"GGUF"
_SUPPORTED_VERSIONS = (2, 3)
_LAYER_TENSOR = re.compile(r"blk\.(\d+)\.")
_MAX_KEPT_ARRAY = 4096  # per-layer values are kept; vocabularies and merges are skipped
_MAX_DIMS = 8

_V = gguf.GGUFValueType
_SCALAR_FORMATS = {
    _V.UINT8: "B",
    _V.INT8: "b",
    _V.UINT16: "H",
    _V.INT16: "h",
    _V.UINT32: "I",
    _V.INT32: "i",
    _V.FLOAT32: "f",
    _V.BOOL: "?",
    _V.UINT64: "Q",
    _V.INT64: "q",
    _V.FLOAT64: "d",
}


class GGUFError(ValueError):
    """A file that cannot be read as a GGUF model; the message is meant for the user."""


class _Corrupt(Exception):
    """The header contradicts itself or runs past the end of the file."""


@dataclass
class _Tensor:
    name: str
    ggml_type: gguf.GGMLQuantizationType
    n_elements: int
    n_bytes: int
    offset: int  # absolute, in the file


@dataclass
class _Header:
    fields: dict[str, Any] = field(default_factory=dict)
    tensors: list[_Tensor] = field(default_factory=list)


class GGUFIncomplete(GGUFError):
    """The bytes given end inside the header or tensor table; more of the file is needed."""


class _PastEnd(_Corrupt):
    """A value runs past the end of the bytes at hand."""


def _read_header(path: Path) -> tuple[_Header, int]:
    """Parse the header and tensor table through a read-only map; return them and the size."""
    byte_order, file_size = _check_start(path)
    try:
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _HeaderParser(buf, byte_order).parse(), file_size
    except struct.error as exc:
        raise GGUFError(f"{path} is truncated or corrupt (the header ends early)") from exc
    except (_Corrupt, ValueError, OverflowError) as exc:  # also bad UTF-8 and unknown value types
        raise GGUFError(f"{path} is truncated or corrupt ({exc})") from exc
    except OSError as exc:
        raise GGUFError(f"Cannot read {path}: {exc.strerror or exc}") from exc


def read_model_info(path: str | Path) -> ModelInfo:
    """Return the metadata of the GGUF model at ``path``; raise ``GGUFError`` if unreadable."""
    path = Path(path)
    header, file_size = _read_header(path)
    data_end = max((t.offset + t.n_bytes for t in header.tensors), default=0)
    if data_end > file_size:
        raise GGUFError(
            f"{path} is truncated or corrupt (tensor data needs {data_end:,} bytes, "
            f"the file has {file_size:,})"
        )
    return _model_info(header, file_size, str(path))


def read_model_shape(path: str | Path) -> ModelShape:
    """The header values the memory-fit estimate needs; raise ``GGUFError`` if unreadable."""
    header, _ = _read_header(Path(path))
    return _model_shape(header)


def read_header_bytes(data: bytes, file_size: int, name: str) -> tuple[ModelInfo, ModelShape]:
    """Info and shape of a GGUF file from its first bytes (``data``) and its full size.

    For a file not on disk, such as one on the Hub. The tensor data is not present, so it is not
    checked; ``GGUFIncomplete`` means ``data`` ends inside the header or tensor table and more of
    the file should be fetched, any other ``GGUFError`` that the start is not a usable header.
    """
    complete = len(data) >= file_size
    byte_order = _check_magic(bytes(data[:8]), name, complete)
    try:
        header = _HeaderParser(data, byte_order, max(file_size, len(data))).parse()
    except (struct.error, _PastEnd) as exc:
        if complete:
            raise GGUFError(f"{name} is truncated or corrupt (the header ends early)") from exc
        raise GGUFIncomplete(
            f"The first {len(data):,} bytes of {name} end inside its header") from exc
    except (_Corrupt, ValueError, OverflowError) as exc:
        raise GGUFError(f"{name} is truncated or corrupt ({exc})") from exc
    return _model_info(header, file_size, name), _model_shape(header)


def _model_info(header: _Header, file_size: int, path: str) -> ModelInfo:
    get = header.fields.get
    try:
        arch = str(get("general.architecture") or "unknown")
        head_count = _max_int(get(f"{arch}.attention.head_count"))
        template = get("tokenizer.chat_template")
        sliding_window = get(f"{arch}.attention.sliding_window")
        layer_bytes, other_bytes = _tensor_bytes(header.tensors)
        return ModelInfo(
            path=path,
            file_size=file_size,
            architecture=arch,
            name=str(get("general.name") or Path(path).stem),
            parameter_count=sum(t.n_elements for t in header.tensors),
            file_type=_file_type(get("general.file_type"), header.tensors),
            context_length=int(get(f"{arch}.context_length") or 0),
            block_count=int(get(f"{arch}.block_count") or len(layer_bytes)),
            embedding_length=int(get(f"{arch}.embedding_length") or 0),
            head_count=head_count,
            head_count_kv=_max_int(get(f"{arch}.attention.head_count_kv")) or head_count,
            has_chat_template=isinstance(template, str) and bool(template),
            chat_template=template if isinstance(template, str) and template else None,
            sliding_window=int(sliding_window) if sliding_window else None,
            layer_tensor_bytes=layer_bytes,
            other_tensor_bytes=other_bytes,
        )
    except (ValueError, TypeError) as exc:  # a metadata value of the wrong type
        raise GGUFError(f"{path} is truncated or corrupt ({exc})") from exc


def _model_shape(header: _Header) -> ModelShape:
    get = header.fields.get
    arch = str(get("general.architecture") or "unknown")
    return ModelShape(
        key_length=_optional_int(get(f"{arch}.attention.key_length")),
        value_length=_optional_int(get(f"{arch}.attention.value_length")),
        feed_forward_length=_max_int(get(f"{arch}.feed_forward_length")),
        vocab_size=_vocab_size(header, arch),
        output_tensor_bytes=_output_bytes(header.tensors),
    )


def _check_start(path: Path) -> tuple[str, int]:
    """Reject what is plainly not a GGUF file; return the struct byte order and the file size."""
    if not path.exists():
        raise GGUFError(f"No such file: {path}")
    if path.is_dir():
        raise GGUFError(f"{path} is a folder, not a GGUF model file")
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
        file_size = path.stat().st_size
    except OSError as exc:
        raise GGUFError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    return _check_magic(head, str(path)), file_size


def _check_magic(head: bytes, name: str, complete: bool = True) -> str:
    """Check the magic and version in the first 8 bytes; return the struct byte order."""
    if not head and complete:
        raise GGUFError(f"{name} is empty, not a GGUF model file")
    if head[:4] != (_MAGIC if complete else _MAGIC[: len(head)]):
        raise GGUFError(f"{name} is not a GGUF model file")
    if len(head) < 8:
        if not complete:
            raise GGUFIncomplete(f"The first {len(head)} bytes of {name} are too few to read")
        raise GGUFError(f"{name} is truncated or corrupt (the header is cut short)")
    byte_order = "<"
    version = struct.unpack("<I", head[4:])[0]
    if version & 0xFFFF == 0:  # written on a big-endian machine
        byte_order = ">"
        version = struct.unpack(">I", head[4:])[0]
    if version not in _SUPPORTED_VERSIONS:
        raise GGUFError(f"{name} uses GGUF version {version}, which Hearth cannot read")
    return byte_order


class _HeaderParser:
    """Walks the key/value section and tensor table of a GGUF file (spec versions 2 and 3)."""

    def __init__(self, buf: mmap.mmap | bytes, byte_order: str, size: int | None = None) -> None:
        self.buf = buf
        self.size = len(buf) if size is None else size  # the whole file's, for sanity checks
        self.pos = 8  # after magic and version
        self.order = byte_order
        self.u64 = struct.Struct(byte_order + "Q")

    def parse(self) -> _Header:
        n_tensors, n_kv = self._unpack("QQ")
        # Every entry takes at least 8 bytes, so larger counts cannot be real.
        if max(n_tensors, n_kv) > self.size // 8:
            raise _Corrupt(f"header claims {n_tensors:,} tensors and {n_kv:,} keys")
        header = _Header()
        for _ in range(n_kv):
            key = self._string()
            value_type = _V(self._unpack("I")[0])
            header.fields[key] = self._value(value_type)
        infos = [self._tensor_info() for _ in range(n_tensors)]
        alignment = int(header.fields.get("general.alignment") or gguf.GGUF_DEFAULT_ALIGNMENT)
        if alignment & (alignment - 1):
            raise _Corrupt(f"alignment {alignment} is not a power of two")
        data_start = -(-self.pos // alignment) * alignment
        for name, ggml_type, n_elements, offset in infos:
            block_size, type_size = gguf.GGML_QUANT_SIZES[ggml_type]
            n_bytes = n_elements * type_size // block_size
            header.tensors.append(
                _Tensor(name, ggml_type, n_elements, n_bytes, data_start + offset)
            )
        return header

    def _unpack(self, fmt: str) -> tuple[Any, ...]:
        s = struct.Struct(self.order + fmt)
        values = s.unpack_from(self.buf, self.pos)
        self.pos += s.size
        return values

    def _string(self) -> str:
        (length,) = self.u64.unpack_from(self.buf, self.pos)
        start = self.pos + 8
        if start + length > len(self.buf):
            raise _PastEnd("a string runs past the end of the file")
        self.pos = start + length
        return self.buf[start : self.pos].decode("utf-8")

    def _value(self, value_type: gguf.GGUFValueType) -> Any:
        if value_type == _V.STRING:
            return self._string()
        if value_type != _V.ARRAY:
            return self._unpack(_SCALAR_FORMATS[value_type])[0]
        item_type = _V(self._unpack("I")[0])
        (count,) = self._unpack("Q")
        if item_type == _V.ARRAY:
            raise _Corrupt("nested arrays are not part of the GGUF format")
        if item_type == _V.STRING:
            if count > _MAX_KEPT_ARRAY:
                self._skip_strings(count)
                return None
            return [self._string() for _ in range(count)]
        fmt = _SCALAR_FORMATS[item_type]
        if count > _MAX_KEPT_ARRAY:
            self.pos += count * struct.calcsize(fmt)
            if self.pos > len(self.buf):
                raise _PastEnd("an array runs past the end of the file")
            return None
        return list(self._unpack(f"{count}{fmt}"))

    def _skip_strings(self, count: int) -> None:
        unpack, buf, pos = self.u64.unpack_from, self.buf, self.pos
        for _ in range(count):
            pos += 8 + unpack(buf, pos)[0]
        if pos > len(buf):
            raise _PastEnd("a string array runs past the end of the file")
        self.pos = pos

    def _tensor_info(self) -> tuple[str, gguf.GGMLQuantizationType, int, int]:
        name = self._string()
        (n_dims,) = self._unpack("I")
        if n_dims > _MAX_DIMS:
            raise _Corrupt(f"tensor {name} claims {n_dims} dimensions")
        n_elements = 1
        for dim in self._unpack(f"{n_dims}Q"):
            n_elements *= dim
        raw_type, offset = self._unpack("IQ")
        try:
            ggml_type = gguf.GGMLQuantizationType(raw_type)
        except ValueError:
            raise _Corrupt(f"tensor {name} has unknown type {raw_type}") from None
        return name, ggml_type, n_elements, offset


def _max_int(value: Any) -> int:
    # Some architectures store per-layer head counts as an array.
    if isinstance(value, list):
        return max((int(v) for v in value), default=0)
    return int(value or 0)


def _optional_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and value > 0 else None


def _vocab_size(header: _Header, arch: str) -> int:
    """Vocabulary size: the header key if present, else the token embedding's row count."""
    declared = header.fields.get(f"{arch}.vocab_size")
    if isinstance(declared, int) and declared > 0:
        return declared
    n_embd = int(header.fields.get(f"{arch}.embedding_length") or 0)
    embd = next((t for t in header.tensors if t.name == "token_embd.weight"), None)
    return embd.n_elements // n_embd if embd and n_embd else 0


def _output_bytes(tensors: list[_Tensor]) -> int:
    """Bytes of the output layer. A model without ``output.weight`` ties it to the token
    embedding, which llama.cpp then loads a second time into the output layer's buffer."""
    by_name = {t.name: t.n_bytes for t in tensors}
    head = by_name.get("output.weight", by_name.get("token_embd.weight", 0))
    return head + by_name.get("output_norm.weight", 0)


def _tensor_bytes(tensors: list[_Tensor]) -> tuple[list[int], int]:
    """Bytes per repeating block (``blk.N.*``) and bytes of everything else."""
    per_layer: dict[int, int] = {}
    other = 0
    for tensor in tensors:
        match = _LAYER_TENSOR.match(tensor.name)
        if match:
            index = int(match.group(1))
            per_layer[index] = per_layer.get(index, 0) + tensor.n_bytes
        else:
            other += tensor.n_bytes
    n_layers = max(per_layer, default=-1) + 1
    return [per_layer.get(i, 0) for i in range(n_layers)], other


def _file_type(raw: Any, tensors: list[_Tensor]) -> str:
    """Quant label from ``general.file_type``, else the type holding most tensor bytes."""
    try:
        ftype = gguf.LlamaFileType(int(raw)) if raw is not None else None
    except (ValueError, TypeError):
        ftype = None
    if ftype is not None and ftype != gguf.LlamaFileType.GUESSED:
        return ftype.name.removeprefix("MOSTLY_").removeprefix("ALL_")
    by_type: Counter[str] = Counter()
    for tensor in tensors:
        by_type[tensor.ggml_type.name] += tensor.n_bytes
    return by_type.most_common(1)[0][0] if by_type else "unknown"


def human_bytes(n: int) -> str:
    """``1_500_000`` → ``"1.5 MB"``, in decimal units as the Hugging Face Hub lists file sizes."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def human_count(n: int) -> str:
    """Parameter counts the way model cards write them: ``268M``, ``7.2B``, ``120K``."""
    for divisor, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if n >= divisor:
            value = n / divisor
            return f"{value:.0f}{suffix}" if value >= 100 else f"{value:.3g}{suffix}"
    return str(n)


def format_model_info(info: ModelInfo) -> str:
    """A multi-line summary for ``hearth info FILE`` and tooltips."""
    layers = f"{info.block_count}"
    if info.sliding_window:
        layers += f" (sliding window {info.sliding_window:,})"
    in_layers = sum(info.layer_tensor_bytes)
    rows = [
        ("File", f"{info.path} ({human_bytes(info.file_size)})"),
        ("Architecture", info.architecture),
        ("Parameters", human_count(info.parameter_count)),
        ("Quant", info.file_type),
        ("Context", f"{info.context_length:,} tokens"),
        ("Layers", layers),
        ("Embedding", f"{info.embedding_length:,}"),
        ("Heads", f"{info.head_count} (KV {info.head_count_kv})"),
        (
            "Weights",
            f"{human_bytes(in_layers)} in layers, {human_bytes(info.other_tensor_bytes)} other",
        ),
        ("Chat template", "yes" if info.has_chat_template else "none"),
    ]
    width = max(len(label) for label, _ in rows) + 1
    return "\n".join([info.name, *(f"  {label + ':':<{width}} {value}" for label, value in rows)])
