"""The HTTP side of a download: one GET of a Hub file (redirects followed by hand, so the token
never goes to a CDN) and what each answer means for the transfer. No Qt."""

from __future__ import annotations

import http.client
from urllib.parse import urljoin, urlsplit

from app.engine.hub.api import gated_error
from app.engine.hub.download_records import DownloadError

_REDIRECTS = (301, 302, 303, 307, 308)


class Transient(Exception):
    """A failure worth retrying: the transfer resumes from the bytes on disk after a pause."""


def open_file(url: str, offset: int, token: str | None, timeout: float,
              filename: str) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    """GET ``url`` from byte ``offset``; the caller reads the body and closes the connection."""
    origin = urlsplit(url).netloc
    for _ in range(6):
        parts = urlsplit(url)
        cls = (http.client.HTTPSConnection if parts.scheme == "https"
               else http.client.HTTPConnection)
        conn = cls(parts.netloc, timeout=timeout)
        headers = {"Accept-Encoding": "identity", "User-Agent": "hearth"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        if token and parts.netloc == origin:  # never send the token to a CDN
            headers["Authorization"] = f"Bearer {token}"
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise Transient(f"could not reach the Hub ({type(exc).__name__})") from None
        if response.status in _REDIRECTS:
            url = urljoin(url, response.getheader("Location", ""))
            conn.close()
            continue
        return response, conn
    raise DownloadError(f"{filename}: too many redirects.")


def raise_for_status(repo_id: str, filename: str, status: int) -> None:
    """Raise what an answer other than 200/206 means: gated, missing, retry later, or fail."""
    if status in (401, 403):
        raise gated_error(repo_id)
    if status == 404:
        raise DownloadError(f"{filename} was not found in {repo_id} on the Hub.")
    if status >= 500 or status == 429:
        raise Transient(f"the Hub answered {status}")
    raise DownloadError(f"{filename}: the Hub answered {status}.")
