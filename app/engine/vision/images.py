"""Attached images to RGB pixels, refusing bad ones with a reason a user can act on.

Images come from outside (a file the user picked, a paste, an API request's base64), so every
one is treated as hostile: its size is checked before anything is read, only the formats Hearth
offers are decoded (PNG, JPEG, WebP, GIF's first frame), and the pixel count the header declares
is checked *before* decoding, so a small file claiming to be 100,000 × 100,000 pixels (a
decompression bomb) costs nothing. Pillow's own bomb guard (its global ``MAX_IMAGE_PIXELS``) is
left as it is for the rest of the process; our limit is lower and checked first, and Pillow's
warning or error, should they fire, become the same `ImageError`.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from app.engine.types import DecodedImage

__all__ = ["MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "SUPPORTED_FORMATS", "DecodedImage",
           "ImageError", "load_image"]

# A 50 MB file is far beyond any photo a chat needs; 40 megapixels covers phone cameras
# (the largest common ones are 48-50 MP but save 12 MP by default) while keeping a decoded
# image under 160 MB of RGBA.
MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")


class ImageError(ValueError):
    """An image that cannot be used; ``reason`` is for the user, ``name`` says which one."""

    def __init__(self, reason: str, name: str = "") -> None:
        self.reason = reason
        self.name = name
        super().__init__(f"{name}: {reason}" if name else reason)


def load_image(source: str | Path | bytes, *, name: str = "",
               max_pixels: int = MAX_IMAGE_PIXELS,
               max_bytes: int = MAX_IMAGE_BYTES) -> DecodedImage:
    """Decode the image file at ``source`` (or its bytes) to RGB; `ImageError` when it is empty,
    too big, not an image Hearth reads, declares more than ``max_pixels`` pixels, or is damaged
    or truncated. Transparent pixels are shown over white; a JPEG's orientation tag is applied;
    an animated GIF gives its first frame. ``name`` labels errors for bytes (a path's own name
    is used otherwise)."""
    data = _read(source, max_bytes, name)
    label = name or (Path(source).name if not isinstance(source, bytes) else "")
    if not data:
        raise ImageError("the file is empty (0 bytes)", label)
    with warnings.catch_warnings():
        # Pillow warns (not raises) between its limit and twice it: make that a refusal.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(_too_many_pixels_reason(None, max_pixels), label) from None
        except UnidentifiedImageError:
            raise ImageError("not an image Hearth can read (PNG, JPEG, WebP or GIF)",
                             label) from None
        except Exception as exc:  # a header so damaged its parser fails before identifying
            raise ImageError(f"the image is damaged ({_short(exc)})", label) from None
        with image:
            width, height = image.size  # from the header: nothing is decoded yet
            if width <= 0 or height <= 0:
                raise ImageError("the image has no pixels (its size is 0)", label)
            if width * height > max_pixels:
                raise ImageError(_too_many_pixels_reason((width, height), max_pixels), label)
            fmt = image.format or "?"
            try:
                image.seek(0)  # an animated GIF or WebP: its first frame
                image.load()
                rgb = _to_rgb(ImageOps.exif_transpose(image) or image)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise ImageError(_too_many_pixels_reason(None, max_pixels), label) from None
            except Exception as exc:  # truncated data, corrupt chunks, bad Huffman tables…
                raise ImageError(f"the image is truncated or damaged ({_short(exc)})",
                                 label) from None
    return DecodedImage(rgb.width, rgb.height, rgb.tobytes(), fmt)


def _read(source: str | Path | bytes, max_bytes: int, name: str) -> bytes:
    if isinstance(source, bytes):
        if len(source) > max_bytes:
            raise ImageError(_too_big_reason(len(source), max_bytes), name)
        return source
    path = Path(source)
    label = name or path.name
    try:
        size = path.stat().st_size
        if size > max_bytes:  # refused before reading a byte
            raise ImageError(_too_big_reason(size, max_bytes), label)
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)  # the file may have grown since stat()
    except ImageError:
        raise
    except OSError as exc:
        raise ImageError(f"cannot read the file ({exc.strerror or exc})", label) from None
    if len(data) > max_bytes:
        raise ImageError(_too_big_reason(len(data), max_bytes), label)
    return data


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _too_many_pixels_reason(size: tuple[int, int] | None, max_pixels: int) -> str:
    limit = f"the limit is {max_pixels / 1e6:g} megapixels"
    if size is None:
        return f"the image declares too many pixels to decode safely ({limit})"
    w, h = size
    return (f"the image declares {w} × {h} pixels ({w * h / 1e6:.1f} megapixels), too many "
            f"to decode safely ({limit})")


def _too_big_reason(size: int, max_bytes: int) -> str:
    return f"the file is {size / 2**20:.1f} MiB; images up to {max_bytes / 2**20:g} MiB are read"


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]
