"""OpenAI ``image_url`` content parts → decoded images, refusing anything unsafe with a 400.

Inline ``data:`` URIs (base64) are read. Web addresses (http, https) are refused unless the
user enabled fetching (the Developer page, ``hearth serve --fetch-images``): the server would
otherwise make requests on a client's behalf (to this machine's network too). This is what
Ollama does. Fetched bytes go through the same `load_image` checks as inline ones.

Every image is bounded before it costs anything: the base64 text's length is checked before
it is decoded, and `load_image` checks the bytes and the pixel count the header declares before
decoding pixels (decompression bombs). Each refusal names the part and says why.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any

from app.engine.types import DecodedImage
from app.engine.vision.images import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, ImageError, load_image
from app.server.errors import ApiError, invalid

if TYPE_CHECKING:
    from app.server.image_fetch import ImageFetcher

__all__ = ["ACCEPTED_MEDIA_TYPES", "MAX_IMAGES", "MAX_REQUEST_PIXELS", "decode_image_part",
           "over_budget"]

MAX_IMAGES = 32  # per request: each is encoded by the projector before the reply starts
# Decoded pixels of one request's images together (3 bytes each): a small, well-compressed PNG
# can declare 40 megapixels, and 32 of them must not cost gigabytes of RAM.
MAX_REQUEST_PIXELS = 2 * MAX_IMAGE_PIXELS
ACCEPTED_MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/webp",
                                  "image/gif"})
# The base64 of MAX_IMAGE_BYTES, and a little for line breaks some encoders add.
_MAX_BASE64_CHARS = (MAX_IMAGE_BYTES + 2) // 3 * 4 + 4096
_DATA_URI = re.compile(r"data:(?P<type>[^;,]*)(?P<params>(?:;[^;,]*)*),", re.IGNORECASE)
_WEB = re.compile(r"\s*(?:https?|ftp)://", re.IGNORECASE)
_HTTP = re.compile(r"\s*https?://", re.IGNORECASE)


def _url(part: Any, param: str) -> str:
    value = part.image_url
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url.strip():
        raise invalid(param, "An 'image_url' part needs 'image_url': {\"url\": \"data:image/png;"
                             "base64,…\"}.")
    return url


def decode_image_part(part: Any, param: str,
                      fetcher: ImageFetcher | None = None) -> DecodedImage:
    """The image of one ``image_url`` content part; an `ApiError` (400) naming ``param`` and the
    reason when it is a web address and ``fetcher`` is None (fetching off) or the fetch fails,
    not a base64 data URI of an image type Hearth reads, too big, or an image that is empty,
    truncated, damaged or a decompression bomb."""
    url = _url(part, param)
    if fetcher is not None and _HTTP.match(url):
        return _checked_image(fetcher.fetch(url, param), param)
    if _WEB.match(url):
        inline = "Send the image inline as a data URI, e.g. \"data:image/png;base64,…\"."
        if fetcher is not None:
            message = f"Only http:// and https:// image addresses are fetched. {inline}"
        else:
            message = ("Images at web addresses are not fetched: this server makes no requests "
                       "on a client's behalf unless its user allows it (turn on \"Fetch images "
                       "from web addresses\" on Hearth's Developer page, or run `hearth serve "
                       f"--fetch-images`). {inline}")
        raise ApiError(400, message, param=param, code="image_url_not_supported")
    head = _DATA_URI.match(url[:512])
    if head is None:
        raise invalid(param, "An image must be a data URI (\"data:image/png;base64,…\"); "
                             f"this one starts with {url[:24]!r}.", "invalid_image")
    media_type = head["type"].strip().lower()
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise invalid(param, f"Images of type {media_type or 'none'!r} are not read; send PNG, "
                             "JPEG, WebP or GIF (image/png, image/jpeg, image/webp, image/gif).",
                      "invalid_image")
    if "base64" not in {p.strip().lower() for p in head["params"].split(";")}:
        raise invalid(param, "The image's data URI must be base64-encoded "
                             "(\"data:image/png;base64,…\").", "invalid_image")
    payload = url[head.end():]
    if len(payload) > _MAX_BASE64_CHARS:  # refused before decoding a byte
        raise invalid(param, f"The image is over {MAX_IMAGE_BYTES / 2**20:g} MiB; send a "
                             "smaller one.", "invalid_image")
    try:
        data = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise invalid(param, "The image's base64 data is not valid base64.",
                      "invalid_image") from None
    return _checked_image(data, param)


def _checked_image(data: bytes, param: str) -> DecodedImage:
    try:
        return load_image(data)
    except ImageError as exc:
        raise invalid(param, f"The image cannot be used: {exc.reason}.", "invalid_image") from exc


def over_budget(param: str, total_pixels: int, budget: int = MAX_REQUEST_PIXELS) -> ApiError:
    """The request's images together are over the pixel budget (one is decoded past it at most,
    so a request never holds more than the budget and one image in RAM)."""
    return invalid(param, f"The images of one request hold at most {budget / 1e6:g} megapixels "
                          f"together; with this one they hold {total_pixels / 1e6:.1f}. Send "
                          "fewer or smaller images.", "invalid_image")
