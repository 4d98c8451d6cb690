"""Images in a chat, for every front end: a user turn's saved images decoded for the model
(once, then kept while they fit a memory budget), and what to tell a user whose loaded model
cannot read images (which models in the library can)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from app.engine.types import DecodedImage
from app.engine.vision.images import MAX_IMAGE_BYTES, ImageError, load_image
from app.models.image_records import StoredImage
from app.models.records import MessageRecord
from app.models.store import Store
from app.services.library_pairings import library_pairings

CACHE_BYTES = 256 * 2**20  # decoded RGB kept for the next turns (a 12 MP photo is 36 MB)


class DecodedImages:
    """Decoded pixels by file path, least recently used dropped first. Thread-safe: the window
    fills and reads it from worker threads (saving at Send, warming a chat, building a history)."""

    def __init__(self, budget: int = CACHE_BYTES) -> None:
        self._budget = budget
        self._items: OrderedDict[str, DecodedImage] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, path: Path, image: DecodedImage) -> None:
        with self._lock:
            self._items[str(path)] = image
            self._items.move_to_end(str(path))
            while (sum(len(i.rgb) for i in self._items.values()) > self._budget
                   and len(self._items) > 1):
                self._items.popitem(last=False)

    def holds(self, path: Path) -> bool:
        with self._lock:
            return str(path) in self._items

    def get(self, path: Path) -> DecodedImage | None:
        """The image's pixels, decoded now if not kept; None when its file is missing or no
        longer a readable image (the turn is then sent without it)."""
        with self._lock:
            image = self._items.get(str(path))
            if image is not None:
                self._items.move_to_end(str(path))
                return image
        try:
            image = load_image(path)
        except ImageError:
            return None
        self.put(path, image)
        return image


DECODED = DecodedImages()  # one per process: the window and `hearth chat` both reuse it


def turn_images(record: MessageRecord, folder: Path,
                cache: DecodedImages = DECODED) -> tuple[DecodedImage, ...]:
    """A user turn's saved images as the model is sent them (missing files left out)."""
    found = (cache.get(image.path_in(folder)) for image in record.images)
    return tuple(image for image in found if image is not None)


def warm(records: Iterable[MessageRecord], folder: Path,
         cache: DecodedImages = DECODED) -> int:
    """Decode a chat's saved images ahead of its next reply (run off the GUI thread when a
    chat is opened), oldest first so the newest stay kept; returns how many."""
    count = 0
    for record in records:
        count += len(turn_images(record, folder, cache))
    return count


def vision_models(store: Store) -> list[str]:
    """The library's models that load with a vision projector (the user's pick, else the one
    beside them), by file name: the latest pairing pass's result, which the window works out
    off the GUI thread (`app.services.library_pairings`)."""
    return library_pairings(store).vision_names(store)


def no_vision_message(model: str | None, vision: Iterable[str]) -> str:
    """Why images cannot be sent now, and which models could read them."""
    names = sorted(vision)
    head = (f"{Path(model).name} cannot read images (it has no vision projector)." if model
            else "No model is loaded, and only a vision model can read images.")
    if not names:
        return head + " No model in your library has one: add a vision model with its mmproj."
    return head + " Load a vision model from your library: " + ", ".join(names) + "."


@dataclass(frozen=True)
class Attachment:
    """An image the user attached and `load_image` accepted, not yet sent: its bytes as they
    came (saved as they are) and its pixels (sent to the model, shown as a thumbnail)."""

    name: str
    data: bytes = field(repr=False)
    image: DecodedImage


def read_attachment(source: Path | bytes, name: str = "") -> Attachment:
    """Check an image file (or pasted bytes) at once; `ImageError` with the reason if bad."""
    if isinstance(source, bytes):
        return Attachment(name or "pasted image", source, load_image(source, name=name))
    name = name or source.name
    try:
        size = source.stat().st_size
        if size > MAX_IMAGE_BYTES:  # refused before reading a byte
            raise ImageError(f"the file is {size / 2**20:.1f} MiB; images up to "
                             f"{MAX_IMAGE_BYTES / 2**20:g} MiB are read", name)
        data = source.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read the file ({exc.strerror or exc})", name) from None
    image = load_image(data, name=name)
    return Attachment(name, data, image)


def save_attachments(store: Store, attachments: Iterable[Attachment],
                     cache: DecodedImages = DECODED) -> tuple[StoredImage, ...]:
    """Keep the images' files in the Store's folder (OSError if it cannot be written); their
    pixels are kept too, so the reply's history does not decode them again."""
    saved = []
    for attached in attachments:
        image = attached.image
        stored = store.save_image(attached.data, attached.name, image.format, image.width,
                                  image.height)
        cache.put(stored.path_in(store.images_folder), image)
        saved.append(stored)
    return tuple(saved)
