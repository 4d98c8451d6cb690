"""The last few repositories' fetched details, so going back to one shows it at once."""

from __future__ import annotations

import time
from collections import OrderedDict

from app.ui.discover.details import RepoDetails

DETAILS_CACHE_SIZE = 16  # repositories whose fetched details are kept
DETAILS_CACHE_TTL_S = 600.0  # after which free memory (the badges) and the files may be stale


class DetailsCache:
    """Complete `RepoDetails` by repository, least recently used dropped first."""

    def __init__(self, size: int = DETAILS_CACHE_SIZE, ttl_s: float = DETAILS_CACHE_TTL_S) -> None:
        self.size, self.ttl_s = size, ttl_s
        self._entries: OrderedDict[str, tuple[float, RepoDetails]] = OrderedDict()

    def get(self, repo_id: str) -> RepoDetails | None:
        entry = self._entries.get(repo_id)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self.ttl_s:
            del self._entries[repo_id]
            return None
        self._entries.move_to_end(repo_id)
        return entry[1]

    def put(self, details: RepoDetails) -> None:
        self._entries[details.repo_id] = (time.monotonic(), details)
        self._entries.move_to_end(details.repo_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
