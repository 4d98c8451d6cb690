"""Attached images: the formats Hearth reads, and every bad image refused with a reason."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from image_samples import png_declaring
from PIL import Image

from app.engine.vision.images import MAX_IMAGE_PIXELS, ImageError, load_image

RED, BLUE = (220, 20, 30), (10, 40, 230)


def _save(image: Image.Image, path: Path, fmt: str, **kw) -> Path:
    image.save(path, fmt, **kw)
    return path


@pytest.mark.parametrize("fmt,suffix", [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")])
def test_common_formats_decode_to_rgb_pixels_of_their_size(tmp_path, fmt, suffix):
    path = _save(Image.new("RGB", (40, 30), RED), tmp_path / f"photo.{suffix}", fmt,
                 **({"quality": 95} if fmt != "PNG" else {}))
    image = load_image(path)
    assert (image.width, image.height, image.format) == (40, 30, fmt)
    assert len(image.rgb) == 40 * 30 * 3
    assert all(abs(a - b) <= 8 for a, b in zip(image.rgb[:3], RED, strict=True))


def test_an_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    image = load_image(path)
    assert image.format == "GIF" and (image.width, image.height) == (16, 16)
    assert all(abs(a - b) <= 8 for a, b in zip(image.rgb[:3], RED, strict=True))


def test_bytes_work_like_files_and_transparency_shows_over_white():
    buf = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(buf, "PNG")
    image = load_image(buf.getvalue(), name="pasted.png")
    assert image.rgb[:3] == bytes((255, 255, 255))


def test_zero_size_file_is_refused(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty") as info:
        load_image(tmp_path / "empty.png")
    assert info.value.name == "empty.png"


def test_a_non_image_renamed_png_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("Meeting notes: these are not pixels.\n" * 20)
    with pytest.raises(ImageError, match="not an image Hearth can read"):
        load_image(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_truncated_file_is_refused(tmp_path, fmt):
    noisy = Image.effect_noise((200, 200), 80).convert("RGB")
    whole = _save(noisy, tmp_path / f"whole.{fmt.lower()}", fmt)
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ImageError, match="truncated or damaged"):
        load_image(cut)


def test_a_decompression_bomb_is_refused_from_its_header_before_decoding(tmp_path):
    # 7000 × 7000 = 49 megapixels declared in a 70-byte file: over Hearth's limit, under Pillow's.
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(7000, 7000))
    started = time.perf_counter()
    with pytest.raises(ImageError, match=r"7000 × 7000 pixels .*too many") as info:
        load_image(path)
    assert time.perf_counter() - started < 0.5
    assert f"{MAX_IMAGE_PIXELS / 1e6:g} megapixels" in info.value.reason


def test_a_bomb_beyond_pillows_own_guard_is_the_same_clear_error():
    with pytest.raises(ImageError, match="too many pixels"):
        load_image(png_declaring(100_000, 100_000), name="huge.png")


def test_the_pixel_limit_applies_to_real_images_too(tmp_path):
    path = _save(Image.new("RGB", (20, 20), RED), tmp_path / "small.png", "PNG")
    with pytest.raises(ImageError, match="20 × 20 pixels"):
        load_image(path, max_pixels=399)
    assert load_image(path, max_pixels=400).width == 20


def test_a_file_too_big_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.jpg"
    path.write_bytes(b"\xff\xd8" + b"\0" * 2048)
    with pytest.raises(ImageError, match="MiB"):
        load_image(path, max_bytes=1024)
