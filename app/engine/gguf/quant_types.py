"""The quantization types Hearth offers, in llama.cpp's names, smallest first.

Kept free of llama_cpp so the UI can list them: each type names its ``LLAMA_FTYPE_*`` constant,
which the quantize worker process resolves. The descriptions are llama-quantize's own figures.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QuantType:
    name: str  # "Q4_K_M", as llama-quantize and file names spell it
    ftype: str  # the llama_ftype constant's name in llama_cpp
    bits: float  # nominal bits per weight, for ordering and rough sizes
    # llama.cpp refuses the 1- and 2-bit IQ types without an importance matrix, and the other
    # low-bit IQ types come out badly without one, so Hearth offers them only with one.
    needs_imatrix: bool
    description: str


def _t(name: str, bits: float, description: str, needs_imatrix: bool = False) -> QuantType:
    prefix = "ALL_" if name == "F32" else "MOSTLY_"
    return QuantType(name, f"LLAMA_FTYPE_{prefix}{name}", bits, needs_imatrix, description)


QUANT_TYPES: tuple[QuantType, ...] = (
    _t("IQ1_S", 1.56, "1.56 bpw, needs an importance matrix", True),
    _t("IQ1_M", 1.75, "1.75 bpw, needs an importance matrix", True),
    _t("IQ2_XXS", 2.06, "2.06 bpw, needs an importance matrix", True),
    _t("IQ2_XS", 2.31, "2.31 bpw, needs an importance matrix", True),
    _t("IQ2_S", 2.5, "2.5 bpw, needs an importance matrix", True),
    _t("IQ2_M", 2.7, "2.7 bpw, needs an importance matrix", True),
    _t("Q2_K", 2.96, "smallest k-quant; large quality loss"),
    _t("IQ3_XXS", 3.06, "3.06 bpw, needs an importance matrix", True),
    _t("Q3_K_S", 3.41, "very small; high quality loss"),
    _t("Q3_K_M", 3.74, "very small; substantial quality loss"),
    _t("Q3_K_L", 4.03, "small; substantial quality loss"),
    _t("IQ4_XS", 4.25, "4.25 bpw; better with an importance matrix"),
    _t("Q4_0", 4.34, "legacy 4-bit; fast on many backends"),
    _t("Q4_K_S", 4.37, "small; some quality loss"),
    _t("Q4_K_M", 4.58, "balanced size and quality; the usual choice"),
    _t("Q5_K_S", 5.21, "low quality loss"),
    _t("Q5_K_M", 5.33, "very low quality loss"),
    _t("Q6_K", 6.14, "near-lossless"),
    _t("Q8_0", 8.0, "practically lossless"),
    _t("BF16", 16.0, "bfloat16; no quantization"),
    _t("F16", 16.0, "float16; no quantization"),
)

_BY_NAME = {t.name: t for t in QUANT_TYPES}

# Sources at these precisions quantize normally; anything lower is requantized, which compounds
# the error of both quantizations.
HIGH_PRECISION_SOURCES: frozenset[str] = frozenset({"F32", "F16", "BF16", "Q8_0"})


def quant_type(name: str) -> QuantType:
    """The type called ``name`` (case-insensitive); ValueError listing the choices otherwise."""
    found = _BY_NAME.get(name.strip().upper())
    if found is None:
        raise ValueError(
            f"Unknown quantization type {name!r}. Choose from: {', '.join(_BY_NAME)}"
        )
    return found


def offered_types(have_imatrix: bool) -> list[QuantType]:
    """The types a user may pick: the imatrix-only ones only once an importance matrix is given."""
    return [t for t in QUANT_TYPES if have_imatrix or not t.needs_imatrix]


def is_requantize(source_file_type: str) -> bool:
    """Whether quantizing a source of this type means requantizing an already-lossy model."""
    return source_file_type.upper() not in HIGH_PRECISION_SOURCES


def requantize_warning(source_file_type: str) -> str | None:
    """The warning a user must accept before quantizing this source, or None if it is fine."""
    if not is_requantize(source_file_type):
        return None
    return (
        f"This model is already quantized ({source_file_type}). Quantizing it again compounds "
        "the error of both quantizations, so the result is worse than quantizing the original "
        "F16/BF16/F32 model to the same type. Use the original if you have it."
    )
