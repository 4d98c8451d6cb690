"""Images the vision tests send: real PNG bytes, and PNG headers that lie about their size."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def noise_png(size: tuple[int, int] = (64, 64)) -> bytes:
    """A PNG of random pixels (each call a different image)."""
    buf = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A real 1×1 PNG whose header (IHDR, with a valid CRC) claims ``width`` × ``height``
    pixels: a decompression bomb as far as its header says."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (220, 20, 30)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4: ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17: ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr: ihdr + 17])))
    return bytes(data)
