"""Images at web addresses through the API: refused unless the user enabled fetching; then
fetched from a real local HTTP server, bounded (time, redirects, size, type), with the same
image checks as data URIs, and the reply counting the image tokens."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import openai
import pytest
from image_samples import noise_png, png_declaring

from app.engine.gguf.info import read_model_info
from app.engine.vision.images import MAX_IMAGE_BYTES
from app.server.config import ServerConfig

VISION_ID = "tiny-vl-chat-f16"
PART = "messages[0].content[1]"


def _ask(url: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


class ImageSite:
    """A real HTTP server on 127.0.0.1 (ephemeral port): ``routes`` maps a path to a function
    writing the answer; ``seen`` keeps each request's path and headers."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.sent: dict[str, int] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                site.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = site.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_error(404)
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # Hearth hung up, as it should on a body too big

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def serve(self, path: str, body: bytes, content_type: str = "image/png",
              length: int | None = None, status: int = 200,
              headers: dict[str, str] | None = None) -> str:
        """Answer ``path`` with ``body``; ``length`` None: the true Content-Length, -1: none
        (the body ends when the connection closes), else the claimed one."""
        def answer(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            if length != -1:
                handler.send_header("Content-Length", str(len(body) if length is None
                                                          else length))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            view = memoryview(body)
            for start in range(0, len(body), 1 << 20):
                handler.wfile.write(view[start: start + (1 << 20)])
                self.sent[path] = start + len(view[start: start + (1 << 20)])
            handler.close_connection = True
        self.routes[path] = answer
        return self.url + path

    def redirect(self, path: str, location: str, headers: dict[str, str] | None = None) -> str:
        def answer(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(302)
            handler.send_header("Location", location)
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        self.routes[path] = answer
        return self.url + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[ImageSite]:
    s = ImageSite()
    yield s
    s.close()


@pytest.fixture
def fetching_server(make_hearth_server):
    """Fetching on, a short time limit, no model loaded: every case here is refused before a
    model would load."""
    return make_hearth_server(ServerConfig(fetch_images=True, image_fetch_timeout_s=0.5),
                              models=[])


def _refusal(server, url: str) -> dict:
    with pytest.raises(openai.BadRequestError) as info:
        server.client.chat.completions.create(model=VISION_ID, messages=_ask(url),
                                              max_tokens=2)
    return info.value.body


def test_off_by_default_a_web_image_is_refused_with_how_to_enable_it(make_hearth_server, site):
    url = site.serve("/cat.png", noise_png())
    body = _refusal(make_hearth_server(models=[]), url)
    assert body["code"] == "image_url_not_supported" and body["param"] == PART
    assert "Developer page" in body["message"] and "hearth serve --fetch-images" in body["message"]
    assert site.seen == []  # nothing was requested


def test_on_a_web_image_streams_a_reply_counting_it_as_the_same_image_inline(
        make_hearth_server, hearth_store, tiny_vision_model, site):
    hearth_store.add_model_file(read_model_info(tiny_vision_model.model))
    server = make_hearth_server(ServerConfig(fetch_images=True))
    image = noise_png()
    url = site.redirect("/short-link", "/pictures/cat.png", {"Set-Cookie": "track=1"})
    site.serve("/pictures/cat.png", image)

    def usage_for(image_url: str):
        stream = server.client.chat.completions.create(
            model=VISION_ID, messages=_ask(image_url), max_tokens=4, seed=1, stream=True,
            stream_options={"include_usage": True})
        chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return chunks[-1].usage

    fetched = usage_for(url)
    inline = usage_for(f"data:image/png;base64,{base64.b64encode(image).decode()}")
    assert fetched.prompt_tokens_details.model_dump()["image_tokens"] == 16
    assert fetched.prompt_tokens == inline.prompt_tokens
    # Followed the redirect, named itself, and sent back no cookie it was given.
    (first, headers1), (second, headers2) = site.seen
    assert (first, second) == ("/short-link", "/pictures/cat.png")
    assert "Hearth" in headers2["user-agent"] and "cookie" not in headers2
    assert "authorization" not in headers1 and "authorization" not in headers2


@pytest.mark.parametrize("setup,code,reason", [
    (lambda s: s.url + "/missing.png", "image_fetch_failed", "answered HTTP 404"),
    (lambda s: s.serve("/page", b"<html>hi</html>", "text/html; charset=utf-8"),
     "invalid_image", "not an image: it answered with 'text/html'"),
    (lambda s: s.serve("/bomb.png", png_declaring(100_000, 100_000)),
     "invalid_image", "too many pixels"),
    (lambda s: s.serve("/cut.png", noise_png()[:300]), "invalid_image", "truncated or damaged"),
    (lambda s: s.redirect("/to-file", "file:///etc/passwd"), "image_fetch_failed",
     "redirected to 'file:///etc/passwd'; only http:// and https://"),
    (lambda s: s.redirect("/to-ftp", "ftp://127.0.0.1/cat.png"), "image_fetch_failed",
     "redirected to 'ftp://127.0.0.1/cat.png'"),
    (lambda s: s.redirect("/loop", "/loop"), "image_fetch_failed", "redirected more than 3"),
    (lambda s: s.url.replace("http://", "http://user:secret@") + "/cat.png",
     "image_fetch_failed", "Hearth sends no credentials"),
])
def test_each_bad_web_image_is_a_400_naming_the_part_and_why(fetching_server, site, setup,
                                                               code, reason):
    site.serve("/cat.png", noise_png())
    body = _refusal(fetching_server, setup(site))
    assert body["param"] == PART and body["code"] == code
    assert reason in body["message"]
    assert all(path != "/etc/passwd" for path, _ in site.seen)


def test_a_body_over_the_cap_is_not_read_whatever_its_length_says(fetching_server, site):
    big = noise_png() + bytes(MAX_IMAGE_BYTES)
    honest = site.serve("/big.png", big)
    unsaid = site.serve("/unsaid.png", big, length=-1)  # no Content-Length: counted as read
    lying = site.serve("/lying.png", big, length=1000)
    cap = f"over {MAX_IMAGE_BYTES / 2**20:g} MiB"
    for url in (honest, unsaid):
        body = _refusal(fetching_server, url)
        assert body["code"] == "invalid_image" and cap in body["message"]
    # Refused on its Content-Length: the connection closed long before the body was sent.
    assert site.sent.get("/big.png", 0) < len(big)
    # A length claiming less is all that is read: the image is cut short, nothing more read.
    body = _refusal(fetching_server, lying)
    assert body["code"] == "invalid_image" and "truncated or damaged" in body["message"]


def test_a_server_that_never_answers_or_refuses_gives_a_400_in_time(fetching_server, site):
    with socket.socket() as silent, socket.socket() as closed:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connections complete, but nobody ever reads or answers
        closed.bind(("127.0.0.1", 0))
        refused_port = closed.getsockname()[1]
        closed.close()  # nothing listens there: the connection is refused

        began = time.monotonic()
        body = _refusal(fetching_server, f"http://127.0.0.1:{silent.getsockname()[1]}/x.png")
        assert time.monotonic() - began < 5
        assert body["code"] == "image_fetch_failed" and "did not answer within 0.5 s" in body[
            "message"]
        body = _refusal(fetching_server, f"http://127.0.0.1:{refused_port}/x.png")
        assert body["code"] == "image_fetch_failed" and "could not be reached" in body["message"]


def test_a_server_dripping_its_body_is_cut_off_at_the_total_time_limit(fetching_server, site):
    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.end_headers()
        for _ in range(40):  # 4 s in all, each byte well within the per-read timeout
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.1)
    site.routes["/drip.png"] = drip
    began = time.monotonic()
    body = _refusal(fetching_server, site.url + "/drip.png")
    assert time.monotonic() - began < 2.5
    assert body["code"] == "image_fetch_failed"
    assert "did not send the whole image within 0.5 s" in body["message"]


def test_hearth_serve_fetch_images_turns_fetching_on(hearth_home, site):
    url = site.serve("/page", b"<html>not a picture</html>", "text/html")
    env = {**os.environ, "HEARTH_HOME": str(hearth_home), "PYTHONUNBUFFERED": "1"}
    env.pop("HEARTH_API_KEY", None)
    process = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", "0",
                                "--fetch-images"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # the first stdout line is the URL, once serving
        found = re.search(r"(http://127\.0\.0\.1:\d+)/v1", line)
        assert found, line + process.stderr.read()
        client = openai.OpenAI(base_url=f"{found.group(1)}/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model=VISION_ID, messages=_ask(url), max_tokens=2)
        client.close()
        # Fetched (the site saw the request) and refused for what it answered.
        assert [path for path, _ in site.seen] == ["/page"]
        assert "not an image: it answered with 'text/html'" in info.value.body["message"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "will be fetched (--fetch-images)" in process.stderr.read()
    finally:
        process.kill()
        process.wait()


def test_the_developer_page_setting_is_off_saved_and_applies_to_the_running_server(
        qtbot, hearth_store, hearth_home, site):
    from app.engine.serving.pool import ModelPool
    from app.ui.developer.page import SETTING_FETCH_IMAGES, DeveloperPage
    from app.ui.developer.server_control import ServerState

    url = site.serve("/page", b"<html>not a picture</html>", "text/html")
    pool = ModelPool()
    pages: list[DeveloperPage] = []

    def make() -> DeveloperPage:
        page = DeveloperPage(hearth_store, pool, data_root=hearth_home)
        qtbot.addWidget(page)
        page.show()
        qtbot.waitUntil(lambda: page.keys_panel.is_loaded)
        page.port_spin.setValue(0)
        pages.append(page)
        return page

    def ask(page: DeveloperPage) -> dict:
        qtbot.waitUntil(lambda: page.control.state is ServerState.RUNNING, timeout=15_000)
        reply = httpx.post(f"{page.control.url}/v1/chat/completions", timeout=30,
                           json={"model": VISION_ID, "messages": _ask(url), "max_tokens": 2})
        assert reply.status_code == 400
        return reply.json()["error"]

    try:
        page = make()
        box = page.fetch_images_box
        assert not box.isChecked()
        assert "web requests on a client's behalf" in box.toolTip()
        page.start_server()
        assert "Developer page" in ask(page)["message"] and site.seen == []

        box.click()  # on: saved, and the running server restarts fetching
        assert hearth_store.get_setting(SETTING_FETCH_IMAGES) is True
        qtbot.waitUntil(lambda: page.control.config.fetch_images, timeout=15_000)
        assert "not an image: it answered with 'text/html'" in ask(page)["message"]
        assert [path for path, _ in site.seen] == ["/page"]
        page.shutdown()

        again = make()  # a new window remembers it
        assert again.fetch_images_box.isChecked()
        again.start_server()
        assert ask(again)["code"] == "invalid_image"
        again.fetch_images_box.click()  # off: refused again at once, nothing more fetched
        qtbot.waitUntil(lambda: not again.control.config.fetch_images, timeout=15_000)
        assert ask(again)["code"] == "image_url_not_supported"
        assert len(site.seen) == 2
    finally:
        for page in pages:
            page.shutdown()
        pool.shutdown()


def test_fetched_images_count_toward_the_requests_pixel_budget(monkeypatch, site):
    from app.server import chat_prompt
    from app.server.errors import ApiError
    from app.server.image_fetch import ImageFetcher
    from app.server.schemas import ChatMessageIn

    monkeypatch.setattr(chat_prompt, "MAX_REQUEST_PIXELS", 2 * 64 * 64)
    image = {"type": "image_url", "image_url": {"url": site.serve("/cat.png", noise_png())}}
    two = [ChatMessageIn(role="user", content=[image, image])]
    assert [len(t.images) for t in chat_prompt.chat_messages(two, ImageFetcher())] == [2]
    with pytest.raises(ApiError) as info:
        chat_prompt.chat_messages([ChatMessageIn(role="user", content=[image] * 3)],
                                  ImageFetcher())
    assert info.value.param == "messages[0].content[2]"
    assert "at most 0.008192 megapixels together" in info.value.message
