"""GUI responsiveness: the longest event-loop stall while a reply streams into a big chat, and
the time to open a chat of 10,000 messages.

A 2 ms heartbeat timer runs on the GUI thread; a stall is the longest gap between two beats
beyond the interval. The same heartbeat on an idle window, in the same run, is the baseline.
Floors: stall ≤ 50 ms while streaming 500 tokens into a chat of 1,000 messages; opening a chat of
10,000 messages ≤ 300 ms (until its newest message has been painted).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import starter_model, verdict

from app.engine.types import LoadSettings, Sampling

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
    bridge.load(starter_model(), LoadSettings(n_ctx=4096))
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

    bridge.shutdown()
    store.close()
    print(f"idle heartbeat worst gap {idle:.1f} ms (baseline)")
    print(f"streaming {generated} tokens into 1,000 messages: worst stall {streaming:.1f} ms "
          f"({streaming / max(idle, 0.1):.1f}× idle)")
    rc = verdict("open_10000_messages_ms", opened, 300, higher_is_better=False)
    return verdict("ui_stall_ms", streaming, 50, higher_is_better=False) or rc


if __name__ == "__main__":
    raise SystemExit(main())
