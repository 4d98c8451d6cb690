"""Walk the key/value section and tensor table of a GGUF file (spec versions 2 and 3).

Every length and count in a GGUF header is written by whoever made the file, so none is trusted:
a count is checked against the bytes that could hold it before anything is read, nothing is
allocated in proportion to a declared length, and what is kept has hard limits (a string longer
than ``MAX_KEPT_STRING`` or an array longer than ``MAX_KEPT_ARRAY`` is skipped, and all kept
values together stay under ``KEPT_BUDGET``). Vocabularies and merges are skipped, which is also
what keeps reading a 262k-token model fast.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from typing import Any

import gguf

MAX_KEPT_ARRAY = 4096  # per-layer values are kept; vocabularies and merges are skipped
MAX_KEPT_STRING = 1 << 20  # chat templates are tens of KB; a longer value is skipped
KEPT_BUDGET = 16 << 20  # all kept keys and values together (Python objects, roughly)
MAX_KEY = 1 << 16  # the spec's limit on a key's length
MAX_TENSOR_NAME = 256  # llama.cpp allows 63 bytes
MAX_KV = 1 << 16  # real files have dozens of keys
MAX_TENSORS = 1 << 18  # real files have hundreds to tens of thousands of tensors
MAX_STRING_ARRAY = 1 << 22  # vocabularies have up to ~10^6 entries; skipping costs a loop step each
MAX_DIMS = 4  # GGML_MAX_DIMS
_INT64_MAX = (1 << 63) - 1
_ITEM_COST = 32  # charged per kept array item: about what a Python int and its slot take

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


class HeaderCorrupt(Exception):
    """The header contradicts itself or claims what the file cannot hold."""


class HeaderPastEnd(HeaderCorrupt):
    """A value runs past the end of the bytes at hand."""


@dataclass
class Tensor:
    name: str
    ggml_type: gguf.GGMLQuantizationType
    n_elements: int
    n_bytes: int
    offset: int  # absolute, in the file


@dataclass
class Header:
    fields: dict[str, Any] = field(default_factory=dict)
    tensors: list[Tensor] = field(default_factory=list)
    skipped: set[str] = field(default_factory=set)  # keys whose values were too big to keep


class HeaderParser:
    """Parses ``buf`` (a map of the file, or its first bytes) from just after magic and version.

    ``size`` is the whole file's size when ``buf`` holds only its start. Raises HeaderPastEnd
    (or ``struct.error``) where ``buf`` ends too early, HeaderCorrupt (or ``ValueError`` for
    bad UTF-8 and unknown value types) where the header cannot be right.
    """

    def __init__(self, buf: mmap.mmap | bytes, byte_order: str, size: int | None = None) -> None:
        self.buf = buf
        self.size = len(buf) if size is None else size  # the whole file's, for sanity checks
        self.pos = 8  # after magic and version
        self.order = byte_order
        self.u64 = struct.Struct(byte_order + "Q")
        self.kept = 0  # bytes charged against KEPT_BUDGET

    def parse(self) -> Header:
        n_tensors, n_kv = self._unpack("QQ")
        # A key/value takes at least 13 bytes and a tensor entry at least 28: counts that the
        # file cannot hold are refused before anything is read or allocated.
        if n_kv > MAX_KV or n_tensors > MAX_TENSORS or n_kv * 13 + n_tensors * 28 > self.size:
            raise HeaderCorrupt(f"header claims {n_tensors:,} tensors and {n_kv:,} keys")
        header = Header()
        for _ in range(n_kv):
            key = self._string(MAX_KEY)
            if key is None:
                raise HeaderCorrupt("a metadata key is too long")
            self._charge(len(key))
            value = header.fields[key] = self._value(_V(self._unpack("I")[0]))
            if value is None:
                header.skipped.add(key)
        infos = [self._tensor_info() for _ in range(n_tensors)]
        alignment = header.fields.get("general.alignment") or gguf.GGUF_DEFAULT_ALIGNMENT
        if not isinstance(alignment, int) or alignment < 1 or alignment & (alignment - 1):
            raise HeaderCorrupt(f"alignment {alignment!r} is not a power of two")
        data_start = -(-self.pos // alignment) * alignment
        for name, ggml_type, n_elements, offset in infos:
            block_size, type_size = gguf.GGML_QUANT_SIZES[ggml_type]
            n_bytes = n_elements * type_size // block_size
            header.tensors.append(Tensor(name, ggml_type, n_elements, n_bytes, data_start + offset))
        return header

    def _unpack(self, fmt: str) -> tuple[Any, ...]:
        s = struct.Struct(self.order + fmt)
        values = s.unpack_from(self.buf, self.pos)
        self.pos += s.size
        return values

    def _charge(self, cost: int) -> bool:
        """Count ``cost`` against the budget for kept values; False (nothing charged) if over."""
        if self.kept + cost > KEPT_BUDGET:
            return False
        self.kept += cost
        return True

    def _string(self, limit: int) -> str | None:
        """The next string, or None (its bytes skipped) when it is longer than ``limit``."""
        (length,) = self.u64.unpack_from(self.buf, self.pos)
        start = self.pos + 8
        if start + length > len(self.buf):
            raise HeaderPastEnd("a string runs past the end of the file")
        self.pos = start + length
        if length > limit:
            return None
        return self.buf[start : self.pos].decode("utf-8")

    def _value(self, value_type: gguf.GGUFValueType) -> Any:
        if value_type == _V.STRING:
            value = self._string(MAX_KEPT_STRING)
            return value if value is not None and self._charge(len(value)) else None
        if value_type != _V.ARRAY:
            return self._unpack(_SCALAR_FORMATS[value_type])[0]
        item_type = _V(self._unpack("I")[0])
        (count,) = self._unpack("Q")
        if item_type == _V.ARRAY:
            raise HeaderCorrupt("nested arrays are not part of the GGUF format")
        if item_type == _V.STRING:
            if count > MAX_STRING_ARRAY or count * 8 > self.size - self.pos:
                raise HeaderCorrupt(f"a string array claims {count:,} entries")
            if count > MAX_KEPT_ARRAY or not self._charge(count * _ITEM_COST):
                self._skip_strings(count)
                return None
            strings: list[str] = []
            for left in range(count - 1, -1, -1):
                value = self._string(MAX_KEPT_STRING)
                if value is None or not self._charge(len(value)):
                    self._skip_strings(left)  # an over-long or over-budget array is not kept
                    return None
                strings.append(value)
            return strings
        fmt = _SCALAR_FORMATS[item_type]
        end = self.pos + count * struct.calcsize(fmt)
        if end > len(self.buf):
            raise HeaderPastEnd("an array runs past the end of the file")
        if count > MAX_KEPT_ARRAY or not self._charge(count * _ITEM_COST):
            self.pos = end
            return None
        return list(self._unpack(f"{count}{fmt}"))

    def _skip_strings(self, count: int) -> None:
        unpack, buf, pos, end = self.u64.unpack_from, self.buf, self.pos, len(self.buf)
        for _ in range(count):
            pos += 8 + unpack(buf, pos)[0]
            if pos > end:
                raise HeaderPastEnd("a string array runs past the end of the file")
        self.pos = pos

    def _tensor_info(self) -> tuple[str, gguf.GGMLQuantizationType, int, int]:
        name = self._string(MAX_TENSOR_NAME)
        if name is None:
            raise HeaderCorrupt("a tensor name is too long")
        (n_dims,) = self._unpack("I")
        if n_dims > MAX_DIMS:
            raise HeaderCorrupt(f"tensor {name} claims {n_dims} dimensions")
        n_elements = 1
        for dim in self._unpack(f"{n_dims}Q"):
            n_elements *= dim
            if n_elements > _INT64_MAX:  # llama.cpp refuses these too
                raise HeaderCorrupt(f"tensor {name} claims more than 2^63 elements")
        raw_type, offset = self._unpack("IQ")
        try:
            ggml_type = gguf.GGMLQuantizationType(raw_type)
        except ValueError:
            raise HeaderCorrupt(f"tensor {name} has unknown type {raw_type}") from None
        if ggml_type not in gguf.GGML_QUANT_SIZES:
            raise HeaderCorrupt(f"tensor {name} has unsupported type {ggml_type.name}")
        return name, ggml_type, n_elements, offset
