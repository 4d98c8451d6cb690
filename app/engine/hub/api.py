"""Search the Hugging Face Hub for GGUF models and list their files, through ``huggingface_hub``.

``huggingface_hub`` reads ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` once, at import; Hearth reads
them on every call instead, so a setting changed after start-up (and every test) is honoured.
Every failure becomes a ``HubError`` whose message a user can act on and which never contains
the token.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from app.engine.gguf.names import is_mmproj, part_name, split_part
from app.engine.types import ModelInfo, ModelShape

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
Sort = Literal["downloads", "likes", "lastModified"]
_SORTS = {"downloads": "downloads", "likes": "likes", "lastModified": "last_modified",
          "updated": "last_modified", "recent": "last_modified"}
NOTABLE_TAGS = ("uncensored", "abliterated", "vision", "embedding", "reasoning", "code")
# Longest labels first so "Q4_K_M" wins over "Q4_K" and "IQ4_XS" over "Q4".
_QUANT = re.compile(
    r"(?<![A-Za-z0-9])(IQ[1-4]_(?:XXS|XS|S|M|NL)|Q[2-8]_K(?:_[SML]|_XL)?|Q[4-8]_[01]|"
    r"Q[4-8]_K|TQ[12]_0|MXFP4|BF16|F16|F32|FP16)(?![A-Za-z0-9])",
    re.IGNORECASE,
)
HEADER_FIRST_BYTES = 1 << 20  # most GGUF headers fit in 1 MiB; Gemma's vocabulary needs ~5
HEADER_MAX_BYTES = 64 << 20
_PARAMS = re.compile(r"(?<![A-Za-z0-9])(\d+(?:\.\d+)?)\s*([BM])(?![A-Za-z0-9])", re.IGNORECASE)


class HubError(Exception):
    """A Hub request failed; the message is for the user."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind  # offline, gated, not_found, server, error


@dataclass(frozen=True)
class HubModel:
    repo_id: str
    author: str
    downloads: int
    likes: int
    last_modified: datetime | None
    tags: tuple[str, ...]
    notable_tags: tuple[str, ...]
    licence: str | None
    parameters: int | None  # weights, from the Hub's GGUF summary or the repo name
    gated: bool = False


@dataclass(frozen=True)
class HubFile:
    """One downloadable model: a single GGUF, or all parts of a split GGUF as one entry."""

    name: str  # first (or only) file
    size: int  # all parts together
    sha256: str | None
    quant: str | None
    kind: Literal["model", "mmproj"] = "model"
    parts: tuple[str, ...] = ()  # every file to download, in order
    part_sizes: tuple[int, ...] = ()
    part_sha256: tuple[str | None, ...] = ()

    @property
    def label(self) -> str:
        return "vision projector (mmproj)" if self.kind == "mmproj" else (self.quant or "GGUF")


@dataclass(frozen=True)
class FileTarget:
    """What the downloader needs for one file: where to fetch it and how to check it."""

    repo_id: str
    filename: str
    revision: str  # the commit, so every part comes from the same snapshot
    url: str
    size: int
    sha256: str | None
    extra: dict[str, Any] = field(default_factory=dict)


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_url(repo_id: str, filename: str, revision: str = "main") -> str:
    return (f"{endpoint()}/{repo_id}/resolve/{quote(revision, safe='')}/"
            f"{quote(filename, safe='/')}")


def quant_label(filename: str) -> str | None:
    """The quantization type named in a GGUF file name (``Q4_K_M``, ``IQ3_XXS``, ``BF16``…)."""
    found = _QUANT.findall(filename.rsplit("/", 1)[-1])
    if not found:
        return None
    label = found[-1].upper()
    return "F16" if label == "FP16" else label


def _check_online() -> None:
    if offline():
        raise HubError("Hearth is offline (HF_HUB_OFFLINE is set), so it cannot reach the Hub.",
                       "offline")


def load_client() -> None:
    """Import the Hub client now, where the caller can afford it (the window, while it starts).

    Importing `huggingface_hub.hf_api` (a very large module) holds the interpreter lock for about
    0.1 s; done first on a worker thread after a click, it froze the window for that long.
    """
    import huggingface_hub.hf_api  # noqa: F401


def _api(token: str | None) -> Any:
    _check_online()
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint(), token=token or False)


def map_error(exc: BaseException, what: str) -> HubError:
    """Turn a huggingface_hub or network error into a message a user can act on."""
    from huggingface_hub import errors

    if isinstance(exc, HubError):
        return exc
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return HubError("Hearth is offline (HF_HUB_OFFLINE is set), so it cannot reach the Hub.",
                        "offline")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, errors.GatedRepoError) or status in (401, 403):
        return gated_error(what)
    if isinstance(exc, errors.RepositoryNotFoundError | errors.EntryNotFoundError) or status == 404:
        return HubError(f"{what} was not found on the Hub.", "not_found")
    if status is not None and status >= 500:
        return HubError(f"The Hub had a server error ({status}) for {what}; try again later.",
                        "server")
    log.warning("Hub request for %s failed: %s", what, type(exc).__name__)
    return HubError(f"Could not reach the Hub for {what} ({type(exc).__name__}). "
                    "Check your internet connection.", "offline")


def gated_error(repo_id: str) -> HubError:
    page = f"{endpoint()}/{repo_id.split(':')[0]}"
    return HubError(
        f"{repo_id} is gated: accept its licence on {page} while logged in, then set your "
        "Hugging Face token in Hearth (Discover → Hub token…, or `hearth token set`).", "gated")


def _licence(tags: Iterable[str]) -> str | None:
    for tag in tags:
        if tag.startswith("license:"):
            return tag.split(":", 1)[1]
    return None


def _notable(repo_id: str, tags: Iterable[str]) -> tuple[str, ...]:
    words = {t.lower() for t in tags} | set(re.split(r"[-_/.\s]+", repo_id.lower()))
    found = [t for t in NOTABLE_TAGS if t in words]
    if "image-text-to-text" in words and "vision" not in found:
        found.append("vision")
    # The Hub's pipeline tags, or the name (nomic-embed-text, mxbai-embed, jina-embeddings).
    embedding_words = {"feature-extraction", "sentence-similarity", "embed", "embeddings"}
    if embedding_words & words and "embedding" not in found:
        found.append("embedding")
    return tuple(found)


def parameters_from_name(repo_id: str) -> int | None:
    match = _PARAMS.search(repo_id.rsplit("/", 1)[-1])
    if not match:
        return None
    scale = 1e9 if match[2].upper() == "B" else 1e6
    return int(float(match[1]) * scale)


def _hub_model(info: Any) -> HubModel:
    tags = tuple(info.tags or ())
    gguf = getattr(info, "gguf", None) or {}
    params = gguf.get("total") if isinstance(gguf, dict) else None
    return HubModel(
        repo_id=info.id,
        author=info.author or info.id.split("/")[0],
        downloads=info.downloads or 0,
        likes=info.likes or 0,
        last_modified=info.last_modified,
        tags=tags,
        notable_tags=_notable(info.id, tags),
        licence=_licence(tags),
        parameters=params or parameters_from_name(info.id),
        gated=bool(info.gated),
    )


def search_models(query: str, sort: str = "downloads", limit: int = 30,
                  token: str | None = None) -> list[HubModel]:
    """GGUF repositories whose name matches ``query``, most downloaded (or liked, recent) first."""
    if sort not in _SORTS:
        raise ValueError(f"unknown sort {sort!r}; expected one of {sorted(_SORTS)}")
    api = _api(token)
    try:
        found = api.list_models(
            search=query or None, filter="gguf", sort=_SORTS[sort], limit=limit,
            expand=["author", "downloads", "likes", "lastModified", "tags", "gguf", "gated"],
        )
        return [_hub_model(info) for info in found]
    except Exception as exc:
        raise map_error(exc, f"the search {query!r}") from None


def _group(siblings: list[Any]) -> list[HubFile]:
    singles: list[HubFile] = []
    splits: dict[str, list[tuple[int, Any]]] = {}
    for s in siblings:
        name = s.rfilename
        if not name.lower().endswith(".gguf"):
            continue
        split = split_part(name)
        if split:
            splits.setdefault(part_name(name, 1), []).append((split[0], s))
            continue
        sha = s.lfs.sha256 if s.lfs else None
        singles.append(HubFile(name, s.size or 0, sha, quant_label(name),
                               "mmproj" if is_mmproj(name) else "model",
                               (name,), (s.size or 0,), (sha,)))
    for first, parts in splits.items():
        parts.sort(key=lambda item: item[0])
        files = [p for _, p in parts]
        shas = tuple(f.lfs.sha256 if f.lfs else None for f in files)
        sizes = tuple(f.size or 0 for f in files)
        singles.append(HubFile(files[0].rfilename, sum(sizes), shas[0], quant_label(first),
                               "mmproj" if is_mmproj(first) else "model",
                               tuple(f.rfilename for f in files), sizes, shas))
    return sorted(singles, key=lambda f: (f.kind == "mmproj", f.size))


def _model_info(repo_id: str, token: str | None) -> Any:
    api = _api(token)
    try:
        return api.model_info(repo_id, files_metadata=True)
    except Exception as exc:
        raise map_error(exc, repo_id) from None


def list_gguf_files(repo_id: str, token: str | None = None) -> list[HubFile]:
    """The repository's GGUF models (split parts grouped), smallest first, projectors last."""
    return _group(_model_info(repo_id, token).siblings or [])


def file_targets(repo_id: str, filenames: Iterable[str],
                 token: str | None = None) -> list[FileTarget]:
    """Download targets for ``filenames``, pinned to the repository's current commit."""
    info = _model_info(repo_id, token)
    revision = info.sha or "main"
    by_name = {s.rfilename: s for s in info.siblings or []}
    targets = []
    for name in filenames:
        sibling = by_name.get(name)
        if sibling is None:
            raise HubError(f"{repo_id} has no file named {name}.", "not_found")
        targets.append(FileTarget(repo_id, name, revision, resolve_url(repo_id, name, revision),
                                  sibling.size or 0, sibling.lfs.sha256 if sibling.lfs else None))
    return targets


def model_card(repo_id: str, token: str | None = None) -> str:
    """The repository's README (Markdown); empty if it has none."""
    _check_online()
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    url = resolve_url(repo_id, "README.md")
    try:
        response = get_session().get(url, headers=build_hf_headers(token=token or False),
                                     follow_redirects=True)
        if response.status_code == 404 and response.headers.get("X-Error-Code") == "EntryNotFound":
            return ""
        hf_raise_for_status(response)
        return response.text
    except Exception as exc:
        raise map_error(exc, repo_id) from None


def _fetch_range(url: str, start: int, end: int, token: str | None) -> bytes:
    """Bytes ``start`` to ``end - 1`` of ``url``, by a Range request. If the server ignores the
    Range and sends the whole file, the bytes before ``start`` are skipped and nothing past
    ``end`` is read."""
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    headers = {**build_hf_headers(token=token or False), "Range": f"bytes={start}-{end - 1}"}
    n = end - start
    chunks: list[bytes] = []
    got = 0
    with get_session().stream("GET", url, headers=headers, follow_redirects=True) as response:
        hf_raise_for_status(response)
        skip = start if response.status_code != 206 else 0
        for chunk in response.iter_bytes():
            if skip:
                if len(chunk) <= skip:
                    skip -= len(chunk)
                    continue
                chunk, skip = chunk[skip:], 0
            chunks.append(chunk)
            got += len(chunk)
            if got >= n:
                break
    return b"".join(chunks)[:n]


def remote_model_info(repo_id: str, filename: str, size: int,
                      token: str | None = None) -> tuple[ModelInfo, ModelShape]:
    """What the GGUF header of a file on the Hub says, from the file's first bytes only.

    Fetches 1 MiB, then continues to twice as much until the header and tensor table are in (at
    most ``HEADER_MAX_BYTES``); each request asks only for the bytes not fetched yet. ``size`` is
    the whole file's (all parts of a split file together).
    """
    from app.engine.gguf.info import GGUFError, GGUFIncomplete, read_header_bytes

    _check_online()
    url = resolve_url(repo_id, filename)
    what = f"{repo_id}/{filename}"
    n = HEADER_FIRST_BYTES
    data = b""
    while True:
        want = min(n, size) if size > 0 else n
        if want > len(data):
            try:
                data += _fetch_range(url, len(data), want, token)
            except Exception as exc:
                raise map_error(exc, what) from None
        try:
            return read_header_bytes(data, max(size, len(data)), filename)
        except GGUFIncomplete:
            whole = size > 0 and len(data) >= size
            if len(data) < want or whole or n >= HEADER_MAX_BYTES:
                raise HubError(f"The header of {what} is larger than Hearth reads "
                               f"({len(data):,} bytes) or the file is cut short.",
                               "error") from None
            n *= 2
        except GGUFError as exc:
            raise HubError(f"{what} is not a readable GGUF file ({exc}).", "error") from None
