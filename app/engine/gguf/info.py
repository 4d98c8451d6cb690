"""Read what a GGUF file says about its model, without loading the weights.

The header is parsed here rather than with ``gguf.GGUFReader``: the reader materialises every
vocabulary string as a numpy array, which for Gemma 3's 262k-token vocabulary takes ~8 s and
~700 MB. This parser keeps only scalars and short arrays and skips the vocabulary, so reading a
model costs a fraction of a second and a few MB whatever its size (``gguf_header`` walks the
bytes, trusting no declared length; ``gguf_values`` checks the values). The ``gguf`` package
still supplies the type tables (value types, tensor types and their sizes, file types).
Everything a user can get wrong (a missing path, a folder, a text file, a truncated download,
a hostile header) becomes a ``GGUFError`` with a readable message.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections import Counter
from pathlib import Path
from typing import Any

import gguf

from app.engine.gguf.header import (
    MAX_KEPT_STRING,
    Header,
    HeaderCorrupt,
    HeaderParser,
    HeaderPastEnd,
    Tensor,
)
from app.engine.gguf.values import MAX_LAYERS, BadValue, count, label, optional_count, printable
from app.engine.types import ModelInfo, ModelShape
from app.engine.units import human_bytes, human_count

_MAGIC = b"GGUF"
_SUPPORTED_VERSIONS = (2, 3)
_LAYER_TENSOR = re.compile(r"blk\.(\d+)\.")


class GGUFError(ValueError):
    """A file that cannot be read as a GGUF model; the message is meant for the user."""


class GGUFIncomplete(GGUFError):
    """The bytes given end inside the header or tensor table; more of the file is needed."""


def _read_header(path: Path) -> tuple[Header, int]:
    """Parse the header and tensor table through a read-only map; return them and the size."""
    byte_order, file_size = _check_start(path)
    try:
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return HeaderParser(buf, byte_order).parse(), file_size
    except struct.error as exc:
        raise GGUFError(f"{path} is truncated or corrupt (the header ends early)") from exc
    except (HeaderCorrupt, ValueError) as exc:  # also bad UTF-8 and unknown value types
        raise GGUFError(f"{path} is truncated or corrupt ({printable(str(exc))})") from exc
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
    path = Path(path)
    header, _ = _read_header(path)
    return _model_shape(header, str(path))


def read_header_bytes(data: bytes, file_size: int, name: str) -> tuple[ModelInfo, ModelShape]:
    """Info and shape of a GGUF file from its first bytes (``data``) and its full size.

    For a file not on disk, such as one on the Hub. The tensor data is not present, so it is not
    checked; ``GGUFIncomplete`` means ``data`` ends inside the header or tensor table and more of
    the file should be fetched, any other ``GGUFError`` that the start is not a usable header.
    """
    complete = len(data) >= file_size
    byte_order = _check_magic(bytes(data[:8]), name, complete)
    try:
        header = HeaderParser(data, byte_order, max(file_size, len(data))).parse()
    except (struct.error, HeaderPastEnd) as exc:
        if complete:
            raise GGUFError(f"{name} is truncated or corrupt (the header ends early)") from exc
        raise GGUFIncomplete(
            f"The first {len(data):,} bytes of {name} end inside its header") from exc
    except (HeaderCorrupt, ValueError) as exc:
        raise GGUFError(f"{name} is truncated or corrupt ({printable(str(exc))})") from exc
    return _model_info(header, file_size, name), _model_shape(header, name)


def _architecture(header: Header) -> str:
    arch = header.fields.get("general.architecture")
    return arch if isinstance(arch, str) and arch else "unknown"


def _model_info(header: Header, file_size: int, path: str) -> ModelInfo:
    get = header.fields.get
    arch = _architecture(header)
    if "tokenizer.chat_template" in header.skipped:
        # Without its template the model would silently chat in the wrong format.
        raise GGUFError(f"{path} has a chat template larger than Hearth accepts "
                        f"({human_bytes(MAX_KEPT_STRING)})")
    try:
        head_count = count(get(key := f"{arch}.attention.head_count"), key)
        template = get("tokenizer.chat_template")
        layer_bytes, other_bytes = _tensor_bytes(header.tensors)
        return ModelInfo(
            path=path,
            file_size=file_size,
            architecture=label(arch, "unknown"),
            name=label(get("general.name"), Path(path).stem),
            parameter_count=sum(t.n_elements for t in header.tensors),
            file_type=_file_type(get("general.file_type"), header.tensors),
            context_length=count(get(key := f"{arch}.context_length"), key),
            block_count=count(get(key := f"{arch}.block_count"), key, MAX_LAYERS)
            or len(layer_bytes),
            embedding_length=count(get(key := f"{arch}.embedding_length"), key),
            head_count=head_count,
            head_count_kv=count(get(key := f"{arch}.attention.head_count_kv"), key)
            or head_count,
            has_chat_template=isinstance(template, str) and bool(template),
            chat_template=template if isinstance(template, str) and template else None,
            sliding_window=optional_count(get(key := f"{arch}.attention.sliding_window"), key),
            layer_tensor_bytes=layer_bytes,
            other_tensor_bytes=other_bytes,
        )
    except ValueError as exc:  # a metadata value that cannot be what its key says
        raise GGUFError(f"{path} is truncated or corrupt ({printable(str(exc))})") from exc


def _model_shape(header: Header, path: str) -> ModelShape:
    get = header.fields.get
    arch = _architecture(header)
    try:
        return ModelShape(
            key_length=optional_count(get(key := f"{arch}.attention.key_length"), key),
            value_length=optional_count(get(key := f"{arch}.attention.value_length"), key),
            feed_forward_length=count(get(key := f"{arch}.feed_forward_length"), key),
            vocab_size=_vocab_size(header, arch),
            output_tensor_bytes=_output_bytes(header.tensors),
        )
    except ValueError as exc:
        raise GGUFError(f"{path} is truncated or corrupt ({printable(str(exc))})") from exc


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


def _vocab_size(header: Header, arch: str) -> int:
    """Vocabulary size: the header key if present, else the token embedding's row count."""
    declared = count(header.fields.get(key := f"{arch}.vocab_size"), key)
    if declared:
        return declared
    n_embd = count(header.fields.get(key := f"{arch}.embedding_length"), key)
    embd = next((t for t in header.tensors if t.name == "token_embd.weight"), None)
    return embd.n_elements // n_embd if embd and n_embd else 0


def _output_bytes(tensors: list[Tensor]) -> int:
    """Bytes of the output layer. A model without ``output.weight`` ties it to the token
    embedding, which llama.cpp then loads a second time into the output layer's buffer."""
    by_name = {t.name: t.n_bytes for t in tensors}
    head = by_name.get("output.weight", by_name.get("token_embd.weight", 0))
    return head + by_name.get("output_norm.weight", 0)


def _tensor_bytes(tensors: list[Tensor]) -> tuple[list[int], int]:
    """Bytes per repeating block (``blk.N.*``) and bytes of everything else."""
    per_layer: dict[int, int] = {}
    other = 0
    for tensor in tensors:
        match = _LAYER_TENSOR.match(tensor.name)
        if match:
            index = int(match.group(1))
            if index >= MAX_LAYERS:
                raise BadValue(f"tensor {tensor.name} is in layer {index:,}")
            per_layer[index] = per_layer.get(index, 0) + tensor.n_bytes
        else:
            other += tensor.n_bytes
    n_layers = max(per_layer, default=-1) + 1
    return [per_layer.get(i, 0) for i in range(n_layers)], other


def _file_type(raw: Any, tensors: list[Tensor]) -> str:
    """Quant label from ``general.file_type``, else the type holding most tensor bytes."""
    try:
        ftype = gguf.LlamaFileType(int(raw)) if raw is not None else None
    except (ValueError, TypeError, OverflowError):  # not a number, or an unknown or absurd one
        ftype = None
    if ftype is not None and ftype != gguf.LlamaFileType.GUESSED:
        return ftype.name.removeprefix("MOSTLY_").removeprefix("ALL_")
    by_type: Counter[str] = Counter()
    for tensor in tensors:
        by_type[tensor.ggml_type.name] += tensor.n_bytes
    return by_type.most_common(1)[0][0] if by_type else "unknown"


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
