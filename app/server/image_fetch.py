"""Fetch an ``image_url`` part's web address, when the user enabled it, bounded in every way.

Off by default (`ServerConfig.fetch_images`): fetching makes the server send requests on a
client's behalf, to the internet and to this machine's own network. When on, each address is
read with one plain GET: a total time limit, a few redirects (http/https only, each checked),
no cookies, no credentials (no ``.netrc``, no user:password in the address), no compression (a
gzip bomb would inflate past the cap inside one chunk), and the body capped at
``MAX_IMAGE_BYTES`` twice: by Content-Length before reading, then by the running count, so a
server lying about its length cannot make us read more.

It is synchronous: `chat_messages` already runs in a worker thread (``asyncio.to_thread``), so
the event loop never waits on it; a request's images are fetched one after another.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from app.engine.vision.images import MAX_IMAGE_BYTES
from app.server.config import DEFAULT_IMAGE_FETCH_TIMEOUT_S, ServerConfig
from app.server.errors import ApiError, invalid

__all__ = ["FETCH_TIMEOUT_S", "MAX_REDIRECTS", "USER_AGENT", "ImageFetcher", "fetcher_for"]

FETCH_TIMEOUT_S = DEFAULT_IMAGE_FETCH_TIMEOUT_S
MAX_REDIRECTS = 3
USER_AGENT = "Hearth (local image fetch)"
_SCHEMES = frozenset({"http", "https"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Some servers label images generically; `load_image` still reads the bytes to decide.
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def _shown(url: str) -> str:
    return repr(url if len(url) <= 80 else url[:77] + "…")


@dataclass(frozen=True)
class ImageFetcher:
    timeout_s: float = FETCH_TIMEOUT_S
    max_redirects: int = MAX_REDIRECTS
    max_bytes: int = MAX_IMAGE_BYTES

    def fetch(self, url: str, param: str) -> bytes:
        """The body at ``url``; an `ApiError` (400) naming ``param`` and the reason when the
        address is not plain http(s), does not answer in time, answers with an error or a
        redirect too many (or to another scheme), or with a body too big or not an image."""
        deadline = time.monotonic() + self.timeout_s
        target = self._checked(url.strip(), param)
        for _hop in range(self.max_redirects + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._failed(param, f"{_shown(str(target))} did not answer within "
                                          f"{self.timeout_s:g} s")
            # A new client per hop: nothing a server sets (cookies) is sent to the next one.
            with httpx.Client(timeout=httpx.Timeout(remaining), trust_env=False,
                              follow_redirects=False,
                              headers={"User-Agent": USER_AGENT, "Accept": "image/*",
                                       "Accept-Encoding": "identity"}) as client:
                try:
                    with client.stream("GET", target) as response:
                        if response.status_code in _REDIRECTS and "location" in response.headers:
                            location = response.headers["location"]
                            target = self._checked(str(response.url.join(location)), param,
                                                   redirected=location)
                            continue
                        return self._body(response, param, deadline)
                except httpx.TimeoutException:
                    raise self._failed(param, f"{_shown(str(target))} did not answer within "
                                              f"{self.timeout_s:g} s") from None
                except (httpx.HTTPError, httpx.InvalidURL) as exc:
                    raise self._failed(param, f"{_shown(str(target))} could not be reached "
                                              f"({type(exc).__name__}: {str(exc)[:120]})"
                                       ) from None
        raise self._failed(param, f"{_shown(url)} redirected more than {self.max_redirects} "
                                  "times")

    def _checked(self, url: str, param: str, redirected: str | None = None) -> httpx.URL:
        """``url`` parsed, if Hearth may fetch it; ``redirected``: the Location it came from."""
        shown = _shown(url if redirected is None else redirected)
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise self._failed(param, f"{shown} is not a valid web address") from None
        if parsed.scheme not in _SCHEMES or not parsed.host:
            what = "is" if redirected is None else "redirected to"
            raise self._failed(param, f"the image address {what} {shown}; only http:// and "
                                      "https:// addresses are fetched")
        if parsed.userinfo:
            raise self._failed(param, "addresses with a user name or password are not "
                                      "fetched: Hearth sends no credentials")
        return parsed

    def _body(self, response: httpx.Response, param: str, deadline: float) -> bytes:
        where = _shown(str(response.url))
        if not 200 <= response.status_code < 300:
            raise self._failed(param, f"{where} answered HTTP {response.status_code}")
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not media_type.startswith("image/") and media_type not in _GENERIC_TYPES:
            raise invalid(param, f"{where} is not an image: it answered with "
                                 f"{media_type[:60]!r}.", "invalid_image")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise self._too_big(param, where)
        chunks: list[bytes] = []
        total = 0
        for chunk in response.iter_raw():  # as received: no waiting to fill a chunk
            total += len(chunk)
            if total > self.max_bytes:
                raise self._too_big(param, where)
            if time.monotonic() > deadline:
                raise self._failed(param, f"{where} did not send the whole image within "
                                          f"{self.timeout_s:g} s")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_big(self, param: str, where: str) -> ApiError:
        return invalid(param, f"The image at {where} is over {self.max_bytes / 2**20:g} MiB; "
                              "send a smaller one.", "invalid_image")

    @staticmethod
    def _failed(param: str, reason: str) -> ApiError:
        return ApiError(400, f"The image could not be fetched: {reason}.", param=param,
                        code="image_fetch_failed")


def fetcher_for(config: ServerConfig) -> ImageFetcher | None:
    """The fetcher ``config`` allows, or None when fetching web images is off (the default)."""
    if not config.fetch_images:
        return None
    return ImageFetcher(timeout_s=config.image_fetch_timeout_s)
