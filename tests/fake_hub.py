"""A local stand-in for the Hugging Face Hub, served on 127.0.0.1 for tests and benchmarks.

It answers the endpoints ``huggingface_hub`` calls for search (``/api/models``), model info with
file sizes and LFS sha256 (``/api/models/{repo}[/revision/{rev}]?blobs=true``) and file resolve
(``/{repo}/resolve/{rev}/{file}``). Like the real Hub, resolving an LFS file answers 302 with
``X-Linked-Size``/``X-Linked-Etag``/``X-Repo-Commit`` and points at a CDN path, which serves the
bytes with ``Range`` support. Faults are injected per file name through ``FakeHub.faults``.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

_CHUNK = 256 * 1024


@dataclass
class FakeRepo:
    repo_id: str
    files: dict[str, bytes]
    readme: str = ""
    tags: list[str] = field(default_factory=lambda: ["gguf"])
    downloads: int = 0
    likes: int = 0
    last_modified: str = "2025-01-01T00:00:00.000Z"
    parameters: int | None = None
    gated: bool = False
    token: str | None = None  # for a gated repo: the one token accepted (None: any token)
    sha: str = ""
    # Files kept outside LFS: listed without a sha256 and served by resolve itself, like the
    # real Hub's small git files (their ETag is all that tells two versions apart).
    no_lfs: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not self.sha:
            self.sha = hashlib.sha1(self.repo_id.encode()).hexdigest()


@dataclass
class Faults:
    """What goes wrong when a file is fetched; counters count down as faults fire."""

    drop_after: int | None = None  # close the connection after this many body bytes
    drops: int = 1  # how many responses are cut short (-1: every one)
    wrong_bytes: bool = False  # flip bytes in the body (sha256 will not match)
    status: int | None = None  # answer resolve with this status (401 gated, 404, 500…)
    status_times: int = -1  # how many times to answer with ``status`` (-1: always)
    throttle_bps: int | None = None  # bytes per second, to make a transfer slow enough to kill
    ignore_range: bool = False  # answer every GET 200 with the whole file, as some servers do
    wrong_range: int = 0  # answer this many Range requests 206 from byte 0 (and say so)
    hold: threading.Event | None = None  # a slow Hub: the bytes wait until the test sets it


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    range: str | None


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.faults: dict[str, Faults] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_repo(self, repo: FakeRepo) -> FakeRepo:
        self.repos[repo.repo_id] = repo
        return repo

    def add_file(self, repo_id: str, name: str, path_or_bytes: Path | bytes) -> None:
        data = path_or_bytes if isinstance(path_or_bytes, bytes) else path_or_bytes.read_bytes()
        self.repos[repo_id].files[name] = data

    def ranges(self, name: str) -> list[str | None]:
        """The Range headers of the GET requests for the bytes of ``name`` (from the CDN, or
        from resolve itself for a file outside LFS)."""
        direct = any(name in repo.no_lfs for repo in self.repos.values())
        return [s.range for s in self.requests if s.method == "GET"
                and (s.path.startswith("/cdn/") or (direct and "/resolve/" in s.path))
                and s.path.endswith("/" + quote(name))]

    def take_fault(self, name: str) -> Faults:
        with self._lock:
            return self.faults.get(name, Faults())

    def status_fault(self, name: str) -> int | None:
        with self._lock:
            fault = self.faults.get(name)
            if fault is None or fault.status is None or fault.status_times == 0:
                return None
            if fault.status_times > 0:
                fault.status_times -= 1
            return fault.status

    def take_wrong_range(self, name: str) -> bool:
        with self._lock:
            fault = self.faults.get(name)
            if fault is None or fault.wrong_range == 0:
                return False
            fault.wrong_range -= 1
            return True

    def should_drop(self, name: str) -> int | None:
        with self._lock:
            fault = self.faults.get(name)
            if fault is None or fault.drop_after is None or fault.drops == 0:
                return None
            if fault.drops > 0:
                fault.drops -= 1
            return fault.drop_after


# Digests by the identity of the bytes object (kept alive in the value, so the id stays valid).
# The real Hub does not hash a file per request; hashing 253 MB on every resolve and every GET
# cost the fake Hub about 0.4 s a request and hid the client's own speed in bench/download.py.
_digests: dict[int, tuple[bytes, str, str]] = {}
_digests_lock = threading.Lock()


def _digest(data: bytes) -> tuple[str, str]:
    """(sha256, sha1) of ``data``, computed once per bytes object."""
    with _digests_lock:
        hit = _digests.get(id(data))
    if hit is not None and hit[0] is data:
        return hit[1], hit[2]
    sha256, sha1 = hashlib.sha256(data).hexdigest(), hashlib.sha1(data).hexdigest()
    with _digests_lock:
        _digests[id(data)] = (data, sha256, sha1)
    return sha256, sha1


def _sha256(data: bytes) -> str:
    return _digest(data)[0]


def _sha1(data: bytes) -> str:
    return _digest(data)[1]


def _model_json(repo: FakeRepo, siblings: bool, blobs: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "_id": repo.sha[:24],
        "id": repo.repo_id,
        "modelId": repo.repo_id,
        "author": repo.repo_id.split("/")[0],
        "sha": repo.sha,
        "downloads": repo.downloads,
        "likes": repo.likes,
        "lastModified": repo.last_modified,
        "createdAt": repo.last_modified,
        "tags": repo.tags,
        "private": False,
        "gated": "manual" if repo.gated else False,
        "library_name": "gguf",
    }
    if repo.parameters is not None:
        data["gguf"] = {"total": repo.parameters, "architecture": "llama"}
    if siblings:
        entries = []
        for name, content in sorted({**repo.files, "README.md": repo.readme.encode()}.items()):
            entry: dict[str, Any] = {"rfilename": name}
            if blobs:
                entry["size"] = len(content)
                entry["blobId"] = _sha1(content)
                if name.endswith(".gguf") and name not in repo.no_lfs:
                    entry["lfs"] = {"size": len(content), "sha256": _sha256(content),
                                    "pointerSize": 134}
            entries.append(entry)
        data["siblings"] = entries
    return data


_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_CDN = re.compile(r"^/cdn/(?P<repo>[^/]+/[^/]+)/(?P<file>.+)$")
_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+?)(?:/revision/(?P<rev>[^/]+))?$")


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def do_HEAD(self) -> None:
            self._route(body=False)

        def do_GET(self) -> None:
            self._route(body=True)

        def _route(self, body: bool) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            hub.requests.append(Seen(self.command, parts.path, self.headers.get("Range")))
            query = parse_qs(parts.query)
            if path == "/api/models":
                return self._search(query)
            if match := _INFO.match(path):
                return self._info(match["repo"], "blobs" in query)
            if match := _RESOLVE.match(path):
                return self._resolve(match["repo"], match["rev"], match["file"], body)
            if match := _CDN.match(path):
                return self._cdn(match["repo"], match["file"], body)
            self._error(404, "EntryNotFound", "Not found")

        def _json(self, data: Any) -> None:
            payload = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _error(self, status: int, code: str, message: str) -> None:
            payload = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _search(self, query: dict[str, list[str]]) -> None:
            words = " ".join(query.get("search", [])).lower()
            filters = query.get("filter", [])
            found = [r for r in hub.repos.values()
                     if words in r.repo_id.lower() and all(f in r.tags for f in filters)]
            key = {"downloads": "downloads", "likes": "likes",
                   "lastModified": "last_modified"}.get(query.get("sort", ["downloads"])[0])
            if key:
                found.sort(key=lambda r: getattr(r, key), reverse=True)
            limit = int(query.get("limit", ["1000"])[0])
            self._json([_model_json(r, siblings=False, blobs=False) for r in found[:limit]])

        def _info(self, repo_id: str, blobs: bool) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found")
            self._json(_model_json(repo, siblings=True, blobs=blobs))

        def _lookup(self, repo_id: str, name: str) -> tuple[FakeRepo, bytes] | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found")
                return None
            if name == "README.md":
                return repo, repo.readme.encode()
            if name not in repo.files:
                self._error(404, "EntryNotFound", "Entry not found")
                return None
            return repo, repo.files[name]

        def _resolve(self, repo_id: str, rev: str, name: str, body: bool) -> None:
            status = hub.status_fault(name)
            if status is not None:
                code = {401: "GatedRepo", 403: "GatedRepo", 404: "EntryNotFound"}.get(status, "")
                return self._error(status, code, f"fault {status}")
            found = self._lookup(repo_id, name)
            if found is None:
                return
            repo, data = found
            if repo.gated and not self._authorized(repo):
                return self._error(401, "GatedRepo", "Access to this model is restricted")
            if not name.endswith(".gguf") or name in repo.no_lfs:
                return self._bytes(repo, name, data, body)
            self.send_response(302)
            self.send_header("Location", f"{hub.url}/cdn/{repo_id}/{quote(name)}")
            self.send_header("X-Repo-Commit", repo.sha)
            self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("X-Linked-Etag", f'"{_sha256(data)}"')
            self.send_header("ETag", f'"{_sha1(data)}"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _authorized(self, repo: FakeRepo) -> bool:
            auth = self.headers.get("Authorization")
            if not auth:
                return False
            return repo.token is None or auth == f"Bearer {repo.token}"

        def _cdn(self, repo_id: str, name: str, body: bool) -> None:
            found = self._lookup(repo_id, name)
            if found is not None:
                self._bytes(found[0], name, found[1], body)

        def _bytes(self, repo: FakeRepo, name: str, data: bytes, body: bool) -> None:
            fault = hub.take_fault(name)
            if fault.hold is not None:
                fault.hold.wait(timeout=30)  # bounded, so a failing test still ends
            start, end = 0, len(data) - 1
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if match and not fault.ignore_range:
                start = 0 if hub.take_wrong_range(name) else int(match[1])
                end = min(int(match[2]), end) if match[2] else end
                if start > end and len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("ETag", f'"{_sha256(data)}"')
            self.send_header("X-Repo-Commit", repo.sha)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if not body:
                return
            piece = memoryview(data)[start:end + 1]
            if fault.wrong_bytes:
                piece = memoryview(bytes(b ^ 0xFF for b in piece[:64]) + bytes(piece[64:]))
            drop_after = hub.should_drop(name)
            self._send(piece, drop_after, fault.throttle_bps)

        def _send(self, piece: memoryview, drop_after: int | None, bps: int | None) -> None:
            sent = 0
            began = time.monotonic()
            try:
                while sent < len(piece):
                    step = len(piece) - sent if bps is None else min(_CHUNK, len(piece) - sent)
                    if drop_after is not None:
                        step = min(step, drop_after - sent)
                        if step <= 0:
                            self.wfile.flush()
                            self.connection.shutdown(socket.SHUT_RDWR)
                            self.close_connection = True
                            return
                    self.wfile.write(piece[sent:sent + step])
                    sent += step
                    if bps:
                        delay = sent / bps - (time.monotonic() - began)
                        if delay > 0:
                            time.sleep(delay)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler
