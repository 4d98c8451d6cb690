"""Streaming speed through the whole app path vs a raw llama.cpp decode loop.

App path: engine host → bridge (queued, coalesced per tick) → chat controller → chat view, with
the reply saved to SQLite as it streams — what a user watches. Baseline: a decode loop written
directly on llama.cpp's C API (llama-cpp-python's low-level bindings) with the same model,
threads, context settings, sampler and token count. Rounds alternate between the two, and the
result is the median of each round's app/raw ratio: the two runs of a round are seconds apart,
so a slow spell of this shared machine slows both. Floor: app ≥ 0.97 × raw.
"""

from __future__ import annotations

import ctypes
import os
import tempfile
import time
from pathlib import Path

import llama_cpp
from _common import median, starter_model, verdict

from app.engine.inference.runtime import default_threads
from app.engine.types import ChatMessage, LoadSettings, Sampling

# A prompt and seed on which the starter (a base model) writes a long reply rather than stopping.
PROMPT = "Write the Python source code of a long program with many functions."
N_CTX = 2048
SAMPLING = Sampling(temperature=0.9, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1,
                    seed=1, max_tokens=300)
ROUNDS = int(os.environ.get("HEARTH_BENCH_ROUNDS", "11"))


class RawLoop:
    """The baseline: llama.cpp's C API, the same context settings and sampler chain, nothing
    else."""

    def __init__(self, path: Path, threads: int) -> None:
        llama_cpp.llama_backend_init()
        mparams = llama_cpp.llama_model_default_params()
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx, cparams.n_batch, cparams.n_ubatch = N_CTX, 512, 512
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.n_outputs_max = 1
        cparams.no_perf = True
        # Flash attention as the app loads models by default (llama.cpp's own default is
        # "auto"): it changes both the speed and the numbers, hence the reply.
        cparams.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
                                   if LoadSettings().flash_attn
                                   else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)

    def tokens_per_second(self, prompt_tokens: list[int], n: int) -> float:
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.ctx), True)
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        s = SAMPLING
        n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        for sampler in (llama_cpp.llama_sampler_init_penalties(n_vocab, 64, s.repeat_penalty,
                                                               0.0, 0.0),
                        llama_cpp.llama_sampler_init_top_k(s.top_k),
                        llama_cpp.llama_sampler_init_top_p(s.top_p, 1),
                        llama_cpp.llama_sampler_init_min_p(s.min_p, 1),
                        llama_cpp.llama_sampler_init_temp(s.temperature),
                        llama_cpp.llama_sampler_init_dist(s.seed)):
            llama_cpp.llama_sampler_chain_add(chain, sampler)
        arr = (llama_cpp.llama_token * len(prompt_tokens))(*prompt_tokens)
        llama_cpp.llama_decode(self.ctx, llama_cpp.llama_batch_get_one(arr, len(prompt_tokens)))
        one = (llama_cpp.llama_token * 1)()
        buf = ctypes.create_string_buffer(256)
        token = llama_cpp.llama_sampler_sample(chain, self.ctx, -1)
        t_first = time.perf_counter()
        for _ in range(n - 1):
            llama_cpp.llama_token_to_piece(self.vocab, token, buf, 256, 0, False)
            one[0] = token
            llama_cpp.llama_decode(self.ctx, llama_cpp.llama_batch_get_one(one, 1))
            token = llama_cpp.llama_sampler_sample(chain, self.ctx, -1)
        elapsed = time.perf_counter() - t_first
        llama_cpp.llama_sampler_free(chain)
        return (n - 1) / elapsed

    def close(self) -> None:
        llama_cpp.llama_free(self.ctx)
        llama_cpp.llama_model_free(self.model)


def main() -> int:
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from app.models.store import Store
    from app.ui.bridge import EngineBridge
    from app.ui.chat.page import ChatPage

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

    from app.engine.inference.runtime import Runtime

    tokenizer = Runtime(path, LoadSettings(n_ctx=256, n_threads=threads))
    prompt = tokenizer.render([ChatMessage("user", PROMPT)])[1]
    tokenizer.close()
    raw = RawLoop(path, threads)
    app_rates, raw_rates = [], []
    try:
        for r in range(ROUNDS + 1):
            rate, n = app_round()
            raw_rate = raw.tokens_per_second(prompt, n)
            if r == 0:
                continue  # warm-up: page cache, allocators, CPU clocks
            app_rates.append(rate)
            raw_rates.append(raw_rate)
            print(f"round {r}: app {rate:.1f} tok/s, raw {raw_rate:.1f} tok/s ({n} tokens)")
    finally:
        raw.close()
        bridge.shutdown()
        store.close()
    ratio = median([app / raw for app, raw in zip(app_rates, raw_rates, strict=True)])
    print(f"app median {median(app_rates):.1f} tok/s, raw median {median(raw_rates):.1f} tok/s")
    return verdict("stream_ratio", ratio, 0.97, higher_is_better=True)


if __name__ == "__main__":
    raise SystemExit(main())
