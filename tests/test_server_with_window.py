"""The window chats while the server streams: one model, one copy, the window never waits."""

from __future__ import annotations

import threading
import time

from app.engine.types import ChatMessage, Sampling
from app.ui.bridge import EngineBridge


def test_the_window_chats_while_api_clients_stream_from_the_same_model(
        qtbot, hearth_server, hearth_store, tiny_chat_model):
    from app.services.serving import ModelCatalog

    catalog = ModelCatalog(hearth_store)
    servable = catalog.find(hearth_server.model)
    bridge = EngineBridge(pool=hearth_server.pool)
    try:
        with qtbot.waitSignal(bridge.loaded, timeout=30_000):
            bridge.load(servable.path, catalog.load_settings(servable))
        assert len(hearth_server.pool.models()) == 1  # the window shares the server's copy

        streamed: list[str] = []
        api_done = threading.Event()

        def api_client() -> None:
            stream = hearth_server.client.chat.completions.create(
                model=hearth_server.model, max_tokens=400, seed=3, stream=True,
                messages=[{"role": "user", "content": "talk for a long time"}])
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    streamed.append(chunk.choices[0].delta.content)
            api_done.set()

        clients = [threading.Thread(target=api_client) for _ in range(4)]
        for client in clients:
            client.start()
        qtbot.waitUntil(lambda: len(streamed) > 20, timeout=30_000)
        busy = hearth_server.pool.models()[0].busy_slots
        started = time.monotonic()
        with qtbot.waitSignal(bridge.done, timeout=30_000) as done:
            bridge.chat([ChatMessage("user", "hello from the window")],
                        Sampling(temperature=0, max_tokens=8))
        window_seconds = time.monotonic() - started
        assert done.args[2].generated_tokens == 8 and done.args[1]
        assert busy == 4 and not api_done.is_set()  # the API streams were still running
        for client in clients:
            client.join(60)
        assert api_done.is_set() and len("".join(streamed)) > 100
        assert window_seconds < 10
    finally:
        bridge.shutdown()
