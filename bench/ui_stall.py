"""GUI responsiveness: the longest event-loop stall while a reply streams into a big chat, and
the time to open a chat of 10,000 messages.

A 2 ms heartbeat timer runs on the GUI thread; a stall is the longest gap between two beats
beyond the interval. The same heartbeat on an idle window, in the same run, is the baseline.
Floors: stall ≤ 50 ms while streaming 500 tokens into a chat of 1,000 messages; opening a chat of
10,000 messages ≤ 300 ms (until its newest message has been painted); stall ≤ 50 ms while the
local server streams four requests from the window's model.

A 4,000-token reply: the longest stall stays ≤ 50 ms, and saving it does not cost more per save
as it grows: the median time of the saves in its last quarter over those in its first quarter
stays ≤ 2. The baseline, measured in the same run, is the old way of saving (rewrite the whole
reply and re-index it for search) at the same lengths.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import starter_model, verdict

from app.engine.types import LoadSettings, Sampling

# At temperature 0 the starter copies the line for as long as it is let, in words (a few
# characters a token), so the reply grows to some 15,000 characters.
LONG_LINE = "The quick brown fox jumps over the lazy dog near the river bank."
LONG_PROMPT = f"Copy this line again and again:\n{LONG_LINE}\n{LONG_LINE}\n"
LONG_SAMPLING = Sampling(temperature=0.0, repeat_penalty=1.0, max_tokens=4000)
SAVE_GROWTH_FLOOR = 2.0

PROMPT = "Write the Python source code of a long program with many functions."
SAMPLING = Sampling(temperature=0.9, seed=1, max_tokens=500)
BEAT_MS = 2
# Long code replies: the starter imitates the chat's earlier answers, so these make it stream a
# long reply too, and they give the view real Markdown and highlighted code to lay out.
SAMPLE_REPLY = "Here is a **program** with many small functions:\n\n```python\n" + "\n".join(
    f"def step_{i}(values):\n    \"\"\"Step {i} of the pipeline.\"\"\"\n"
    f"    return [v * {i} + {i % 7} for v in values if v % {i % 5 + 2}]\n"
    for i in range(1, 25)
) + "```\n"


def fill(store, chat_id: int, n: int) -> None:
    for _ in range(n // 2):
        store.add_message(chat_id, "user", PROMPT)
        store.add_message(chat_id, "assistant", SAMPLE_REPLY)


def timed_saves(store) -> list[tuple[int, float]]:
    """Record (stored length before the save, seconds) for every reply save from now on."""
    saves: list[tuple[int, float]] = []
    real = store.save_reply
    length = {"now": 0}

    def save_reply(message_id, piece, **fields):
        started = time.perf_counter()
        try:
            return real(message_id, piece, **fields)
        finally:
            if not fields:  # the last save also indexes the reply for search: not a streaming one
                saves.append((length["now"], time.perf_counter() - started))
            length["now"] += len(piece)

    store.save_reply = save_reply
    return saves


def growth(saves: list[tuple[int, float]]) -> tuple[float, float, float]:
    """Median seconds of the first and last quarter of the saves, and their ratio."""
    from statistics import median

    quarter = max(1, len(saves) // 4)
    early = median(t for _, t in saves[:quarter])
    late = median(t for _, t in saves[-quarter:])
    return early, late, late / early


def old_way(store, chat_id: int, text: str, lengths: tuple[int, int]) -> tuple[float, float]:
    """Median seconds to save `text` cut at each length the way it was: whole, then re-indexed."""
    from statistics import median

    message = store.add_message(chat_id, "assistant", "")
    costs = []
    for length in lengths:
        runs = []
        for i in range(15):
            started = time.perf_counter()
            store.update_message(message.id, content=text[:length - (i % 2)])
            runs.append(time.perf_counter() - started)
        costs.append(median(runs))
    return costs[0], costs[1]


class Heartbeat:
    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(BEAT_MS)
        self.timer.timeout.connect(self._beat)
        self.worst = 0.0
        self._last = 0.0

    def start(self) -> None:
        self.worst, self._last = 0.0, time.perf_counter()
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.worst * 1000

    def _beat(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self._last - BEAT_MS / 1000)
        self._last = now


def stall_while_serving(store, bridge, page, beat: Heartbeat, loop) -> float:
    """The worst GUI stall while the API server, on the window's own pool and model, streams
    four requests at once (and the chat page stays open on a big chat)."""
    import threading

    import httpx

    from app.server.app_factory import create_app
    from app.server.config import ServerConfig
    from app.server.runner import ServerRunner
    from app.services.serving import ModelCatalog

    catalog = ModelCatalog(store)
    window_model = bridge.pool.get(bridge.loaded_path)
    servable = catalog.add_path(bridge.loaded_path)
    bridge.pool.load(servable.id, servable.path, window_model.settings)  # the same copy
    config = ServerConfig(port=0)
    runner = ServerRunner(create_app(bridge.pool, catalog, config), config)
    runner.start()
    finished = threading.Event()
    done = []

    def client(seed: int) -> None:
        body = {"model": servable.id, "max_tokens": 200, "seed": seed, "stream": True,
                "messages": [{"role": "user", "content": PROMPT}]}
        with httpx.stream("POST", f"{runner.url}/v1/chat/completions", json=body,
                          timeout=300) as response:
            for _line in response.iter_lines():
                pass
        done.append(seed)
        if len(done) == 4:
            finished.set()

    from PySide6.QtCore import QTimer

    beat.start()
    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    poll = QTimer()
    poll.timeout.connect(lambda: finished.is_set() and loop.quit())
    poll.start(20)
    loop.exec()
    poll.stop()
    stall = beat.stop()
    for thread in threads:
        thread.join()
    runner.stop()
    return stall


def main() -> int:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.models.store import Store
    from app.ui.bridge import EngineBridge
    from app.ui.chat.page import ChatPage

    qapp = QApplication.instance() or QApplication([])
    home = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    store = Store.open(home / "hearth.db")
    print("filling chats (1,000 and 10,000 messages)…")
    big = store.create_chat(title="1,000 messages", sampling=SAMPLING)
    fill(store, big.id, 1000)
    huge = store.create_chat(title="10,000 messages")
    fill(store, huge.id, 10_000)

    bridge = EngineBridge()
    page = ChatPage(store, bridge)
    page.resize(1200, 800)
    page.show()
    loop = QEventLoop()
    bridge.loaded.connect(lambda *a: loop.quit())
    bridge.load(starter_model(), LoadSettings(n_ctx=8192))
    loop.exec()

    def spin(seconds: float) -> None:
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    beat = Heartbeat()
    beat.start()
    spin(2.0)
    idle = beat.stop()

    page.open_chat(big.id)
    spin(0.5)
    done: dict = {}

    def on_done(_job, _text, stats) -> None:
        done["stats"] = stats
        loop.quit()

    bridge.done.connect(on_done)
    # A base model may end its reply early; try seeds until one streams the full 500 tokens.
    for seed in range(1, 13):
        store.update_chat(big.id, sampling=Sampling.from_dict({**SAMPLING.to_dict(), "seed": seed}))
        page.open_chat(big.id)
        beat.start()
        page.controller.send(PROMPT)
        loop.exec()
        streaming = beat.stop()
        generated = done["stats"].generated_tokens
        print(f"seed {seed}: {generated} tokens ({done['stats'].stop_reason})")
        if generated >= SAMPLING.max_tokens:
            break

    page.open_chat(big.id)
    spin(0.3)
    started = time.perf_counter()
    page.open_chat(huge.id)
    page.view.repaint()  # paint now: the user sees the chat, not just a model that holds it
    qapp.processEvents()
    opened = (time.perf_counter() - started) * 1000

    # A 4,000-token reply in a chat of its own (a long answer, not a long chat).
    long_chat = store.create_chat(title="4,000 tokens", sampling=LONG_SAMPLING)
    page.open_chat(long_chat.id)
    spin(0.3)
    saves = timed_saves(store)
    beat.start()
    page.controller.send(LONG_PROMPT)
    loop.exec()
    long_stall = beat.stop()
    long_tokens = done["stats"].generated_tokens
    while not page.controller.saved():
        spin(0.05)
    reply = store.list_messages(long_chat.id)[-1].content
    if len(saves) < 8:
        print(f"the reply ended after {long_tokens} tokens and {len(saves)} saves: too short")
        saves = [(1, 1.0)] * 4 + [(2, 1e9)] * 4  # reported as BELOW
    early, late, ratio = growth(saves)
    eighth = max(1, len(saves) // 8)
    first_len, last_len = max(1, saves[eighth][0]), max(2, saves[-eighth][0])
    old_early, old_late = old_way(store, long_chat.id, reply, (first_len, last_len))

    serving_stall = stall_while_serving(store, bridge, page, beat, loop)

    bridge.shutdown()
    store.close()
    print(f"idle heartbeat worst gap {idle:.1f} ms (baseline)")
    print(f"the local server streaming 4 requests beside the window: worst stall "
          f"{serving_stall:.1f} ms ({serving_stall / max(idle, 0.1):.1f}× idle)")
    print(f"streaming {generated} tokens into 1,000 messages: worst stall {streaming:.1f} ms "
          f"({streaming / max(idle, 0.1):.1f}× idle)")
    print(f"streaming a {long_tokens}-token reply ({len(reply):,} characters): worst stall "
          f"{long_stall:.1f} ms ({long_stall / max(idle, 0.1):.1f}× idle)")
    print(f"{len(saves)} saves while it streamed: {early * 1000:.2f} ms each in the first "
          f"quarter, {late * 1000:.2f} ms in the last ({ratio:.2f}×)")
    print(f"baseline, the old way (rewrite and re-index the whole reply): "
          f"{old_early * 1000:.2f} ms at {first_len:,} characters, {old_late * 1000:.2f} ms at "
          f"{last_len:,} ({old_late / old_early:.2f}×)")
    rc = verdict("open_10000_messages_ms", opened, 300, higher_is_better=False)
    rc = verdict("ui_stall_ms", streaming, 50, higher_is_better=False) or rc
    rc = verdict("long_reply_stall_ms", long_stall, 50, higher_is_better=False) or rc
    rc = verdict("serving_stall_ms", serving_stall, 50, higher_is_better=False) or rc
    return verdict("long_reply_save_growth", ratio, SAVE_GROWTH_FLOOR,
                   higher_is_better=False) or rc


if __name__ == "__main__":
    raise SystemExit(main())
