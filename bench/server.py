"""Hearth's OpenAI-compatible server vs llama.cpp's own llama-server, streaming chat completions.

Both run as child processes on the starter model with the same threads (Hearth's default, the
physical cores, passed to llama-server with -t), context per sequence, flash-attention setting,
prompt text (Hearth's plain format for a model without a chat template) and sampler (temperature
0.9, top-k 40, top-p 0.95, min-p 0.05, repeat penalty 1.1, fixed seeds, 300 tokens). A client
streams `/v1/chat/completions` with httpx; a stream's rate is its tokens per second from its
first content chunk to its last. Rounds alternate between the servers (who goes first swaps
each round) and the first round of each part is a warm-up.

(a) One stream, Hearth (its default slots) vs llama-server --parallel 1: the median of the
    per-round ratios. Floor: Hearth ≥ 0.95 × llama-server.
(b) Four concurrent clients (seeds 6–9), Hearth vs llama-server --parallel 4: aggregate tokens
    per second (all tokens / first chunk to last chunk of the round), median of per-round
    ratios. Floor: ≥ 0.9 ×. Also: no Hearth stream is cut (each reaches max_tokens or a natural
    stop) and the rates of its streams that ran to max_tokens stay within 20% of each other
    (slowest ≥ 0.8 × fastest) in every round; a failure makes the verdict BELOW. The same
    checks on llama-server's streams are printed.

Each server's CPU time while the other one was measured is printed: an idle server that burns
CPU slows its rival. Exit code 1 if either part is below its floor. HEARTH_BENCH_ROUNDS (9),
HEARTH_BENCH_CONCURRENT_ROUNDS (5) and HEARTH_BENCH_TOKENS (300) shorten a trial run.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from collections.abc import Callable

from _common import ROOT, median, starter_model, verdict
from _llama_server import (
    ServerProcess,
    StreamResult,
    chat_body,
    exit_on_sigterm,
    free_port,
    machine_load,
    running,
    start_llama_server,
    start_process,
    stream_concurrently,
)
from stream import PROMPT, SAMPLER, SAMPLING

from app.engine.inference.prompt_format import PLAIN_STOPS
from app.engine.inference.runtime import default_threads
from app.engine.types import LoadSettings

ROUNDS = int(os.environ.get("HEARTH_BENCH_ROUNDS", "9"))
CONCURRENT_ROUNDS = int(os.environ.get("HEARTH_BENCH_CONCURRENT_ROUNDS", "5"))
CLIENTS = 4
# Seeds on which the starter ran to 300 tokens on both servers when tried (2, 3, 5 stop early
# on one or both): a stream that stops early leaves a smaller batch, a different workload.
CONCURRENT_SEEDS = (6, 7, 8, 9)
SINGLE_FLOOR, CONCURRENT_FLOOR, SPREAD_FLOOR = 0.95, 0.9, 0.8


def start_hearth(home: str) -> ServerProcess:
    """`hearth serve` with the starter preloaded, in a data folder of its own."""
    port = free_port()
    env = dict(os.environ, HEARTH_HOME=home)
    cmd = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--model", "starter"]
    return start_process("hearth-serve", cmd, port, env=env, cwd=ROOT,
                         ready=lambda health: health.get("models_loaded", 0) >= 1)


class Side:
    """One server under test: its requests, and CPU it spends while the other is measured."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.model = server.model_id()
        self.idle_cpu = 0.0

    def bodies(self, n: int) -> list[dict]:
        seeds = CONCURRENT_SEEDS[:n] if n > 1 else (SAMPLING.seed,)
        return [chat_body(self.model, PROMPT, SAMPLER, seed, SAMPLING.max_tokens, PLAIN_STOPS)
                for seed in seeds]

    def run(self, n: int, other: Side) -> list[StreamResult]:
        before = other.server.cpu_seconds()
        results = stream_concurrently(self.server.base_url, self.bodies(n))
        other.idle_cpu += other.server.cpu_seconds() - before
        return results


def aggregate(results: list[StreamResult]) -> float:
    span = max(r.t_last for r in results) - min(r.t_first for r in results)
    return sum(r.tokens for r in results) / span if span > 0 else 0.0


def stream_problems(results: list[StreamResult]) -> list[str]:
    """Cut streams and uneven rates, as a user of the four streams would notice them."""
    problems = [f"stream {i + 1} cut: {why}" for i, r in enumerate(results)
                if (why := r.cut(SAMPLING.max_tokens))]
    # A stream that stops early ran only while all four shared the cores, the others sped up
    # after it: compare the streams that ran to max_tokens.
    rates = [r.rate for r in results if r.finish_reason == "length"]
    if not problems and len(rates) > 1 and min(rates) < SPREAD_FLOOR * max(rates):
        problems.append(f"uneven rates {', '.join(f'{x:.1f}' for x in rates)}")
    return problems


def alternate(rounds: int, hearth: Side, llama: Side, n: int,
              measure: Callable[[list[StreamResult]], float],
              check: Callable[[str, list[StreamResult]], None]) -> list[float]:
    ratios = []
    for r in range(rounds + 1):
        first, second = (hearth, llama) if r % 2 == 0 else (llama, hearth)
        got = {id(first): first.run(n, second)}
        got[id(second)] = second.run(n, first)
        h, ll = got[id(hearth)], got[id(llama)]
        if r == 0:
            continue  # warm-up: page cache, allocators, CPU clocks, both servers' first request
        check("hearth", h)
        check("llama-server", ll)
        ratios.append(measure(h) / measure(ll))
        print(f"round {r}: hearth {measure(h):.1f} tok/s "
              f"[{' '.join(str(x.tokens) for x in h)} tok], llama-server {measure(ll):.1f} "
              f"tok/s [{' '.join(str(x.tokens) for x in ll)} tok], ratio {ratios[-1]:.3f}",
              flush=True)
    return ratios


def main() -> int:
    exit_on_sigterm()
    print(machine_load(), flush=True)
    path = starter_model()
    threads = default_threads()
    settings = LoadSettings()
    print(f"starter {path}, {threads} threads, {settings.n_ctx}-token context per sequence, "
          f"flash attention {'on' if settings.flash_attn else 'off'}", flush=True)
    failures: list[str] = []

    def check(name: str, results: list[StreamResult]) -> None:
        for problem in stream_problems(results):
            print(f"  {name}: {problem}")
            if name == "hearth":
                failures.append(problem)

    # The data folder gets a copy of the starter (about 250 MB): removed after the run.
    with (tempfile.TemporaryDirectory(prefix="hearth-bench-serve-") as home,
          running(start_hearth(home)) as hearth_server):
        hearth = Side(hearth_server)
        with running(start_llama_server(path, threads, settings.n_ctx, 1,
                                        settings.flash_attn)) as llama_server:
            llama = Side(llama_server)
            print("(a) one stream: hearth vs llama-server --parallel 1", flush=True)
            single = alternate(ROUNDS, hearth, llama, 1, lambda rs: rs[0].rate,
                               lambda name, rs: None)
            print(f"  idle CPU: hearth {hearth.idle_cpu:.1f} s, "
                  f"llama-server {llama.idle_cpu:.1f} s")
        hearth.idle_cpu = 0.0
        with running(start_llama_server(path, threads, settings.n_ctx, CLIENTS,
                                        settings.flash_attn)) as llama_server:
            llama = Side(llama_server)
            print(f"(b) {CLIENTS} concurrent streams: hearth vs llama-server --parallel "
                  f"{CLIENTS}", flush=True)
            concurrent = alternate(CONCURRENT_ROUNDS, hearth, llama, CLIENTS, aggregate, check)
            print(f"  idle CPU: hearth {hearth.idle_cpu:.1f} s, "
                  f"llama-server {llama.idle_cpu:.1f} s")
    print(f"after the run: {machine_load()}")
    print(f"single-stream ratios: min {min(single):.3f}, max {max(single):.3f}, "
          f"stdev {statistics.pstdev(single):.3f}")
    code = verdict("server_stream_ratio", median(single), SINGLE_FLOOR, higher_is_better=True)
    value = median(concurrent)
    if failures:
        print(f"hearth's concurrent streams failed {len(failures)} check(s): cut or uneven")
        print(f"server_concurrent_ratio: {value:.3f} (floor {CONCURRENT_FLOOR}) BELOW")
        return 1
    return verdict("server_concurrent_ratio", value, CONCURRENT_FLOOR,
                   higher_is_better=True) or code


if __name__ == "__main__":
    raise SystemExit(main())
