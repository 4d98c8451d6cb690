"""Streaming speed through the whole app path vs llama.cpp's own llama-server, one stream.

App path: engine host → bridge (queued, coalesced per tick) → chat controller → chat view, with
the reply saved to SQLite as it streams — what a user watches; its rate is the engine's count
from first to last token. Baseline: llama-server (built from the llama.cpp that
llama-cpp-python vendors, `bench/_llama_server.py`), --parallel 1, on the same cores: same
model, threads, context size, flash-attention setting, prompt text (Hearth's plain format),
sampler, seed and token count, streamed over `/v1/chat/completions`; its rate is tokens per
second from the first content chunk the client receives to the last. Rounds alternate between
the two, and the result is the median of each round's app/llama-server ratio: the two runs of
a round are seconds apart, so a slow spell of this shared machine slows both.
Floor: app ≥ 0.95 × llama-server. HEARTH_BENCH_ROUNDS (11) and HEARTH_BENCH_TOKENS (300)
shorten a trial run.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from _common import median, starter_model, verdict
from _llama_server import (
    chat_body,
    exit_on_sigterm,
    machine_load,
    running,
    start_llama_server,
    stream_concurrently,
)

from app.engine.inference.prompt_format import PLAIN_STOPS
from app.engine.inference.runtime import default_threads
from app.engine.types import LoadSettings, Sampling

# A prompt and seed on which the starter (a base model) writes a long reply rather than stopping.
PROMPT = "Write the Python source code of a long program with many functions."
N_CTX = 2048
SAMPLING = Sampling(temperature=0.9, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1,
                    seed=1, max_tokens=int(os.environ.get("HEARTH_BENCH_TOKENS", "300")))
# The same sampler as fields of an OpenAI-style request (llama-server's names for the extras).
SAMPLER = {"temperature": SAMPLING.temperature, "top_k": SAMPLING.top_k,
           "top_p": SAMPLING.top_p, "min_p": SAMPLING.min_p,
           "repeat_penalty": SAMPLING.repeat_penalty}
ROUNDS = int(os.environ.get("HEARTH_BENCH_ROUNDS", "11"))


def main() -> int:
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from app.models.store import Store
    from app.ui.bridge import EngineBridge
    from app.ui.chat.page import ChatPage

    exit_on_sigterm()
    print(machine_load(), flush=True)
    path = starter_model()
    threads = default_threads()
    qapp = QApplication.instance() or QApplication([])  # noqa: F841 (kept alive for the run)
    home = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    store = Store.open(home / "hearth.db")
    bridge = EngineBridge()
    page = ChatPage(store, bridge)
    page.resize(1100, 800)
    page.show()
    result: dict = {}
    waiting = QEventLoop()
    bridge.loaded.connect(lambda *a: (result.setdefault("loaded", True), waiting.quit()))
    bridge.failed.connect(lambda j, msg, kind: (result.setdefault("error", msg), waiting.quit()))
    bridge.load(path, LoadSettings(n_ctx=N_CTX, n_threads=threads))
    waiting.exec()
    if "error" in result:
        raise SystemExit(result["error"])

    def app_round() -> tuple[float, int]:
        done: dict = {}
        loop = QEventLoop()

        def on_done(job_id: int, text: str, stats) -> None:
            done["stats"] = stats
            loop.quit()

        bridge.done.connect(on_done)
        chat_id = page.new_chat()
        store.update_chat(chat_id, system_prompt="", sampling=SAMPLING)
        page.open_chat(chat_id)
        page.controller.send(PROMPT)
        loop.exec()  # the real event loop: no polling that would steal the decode threads' CPU
        bridge.done.disconnect(on_done)
        stats = done["stats"]
        # The view receives the first tokens one tick after they are made and the last ones at
        # once, so the engine's own count between first and last token is the honest rate:
        # the GUI, the bridge and the database writes all run on the same two cores meanwhile.
        return stats.tokens_per_second, stats.generated_tokens

    app_rates, base_rates = [], []
    try:
        with running(start_llama_server(path, threads, N_CTX, 1,
                                        LoadSettings().flash_attn)) as server:
            model = server.model_id()
            for r in range(ROUNDS + 1):
                rate, n = app_round()
                body = chat_body(model, PROMPT, SAMPLER, SAMPLING.seed, n, PLAIN_STOPS)
                base = stream_concurrently(server.base_url, [body])[0]
                if base.error:
                    raise SystemExit(f"llama-server: {base.error}")
                if r == 0:
                    continue  # warm-up: page cache, allocators, CPU clocks
                app_rates.append(rate)
                base_rates.append(base.rate)
                own = f", its own count {base.server_rate:.1f}" if base.server_rate else ""
                print(f"round {r}: app {rate:.1f} tok/s ({n} tokens), llama-server "
                      f"{base.rate:.1f} tok/s ({base.tokens} tokens{own})", flush=True)
    finally:
        bridge.shutdown()
        store.close()
    print(f"after the run: {machine_load()}")
    ratio = median([app / base for app, base in zip(app_rates, base_rates, strict=True)])
    print(f"app median {median(app_rates):.1f} tok/s, "
          f"llama-server median {median(base_rates):.1f} tok/s")
    return verdict("stream_ratio", ratio, 0.95, higher_is_better=True)


if __name__ == "__main__":
    raise SystemExit(main())
