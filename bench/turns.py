"""Time to first token at turn 2 and turn 20 of one chat, through the engine host.

Multi-turn chats reuse the KV cache for the shared prefix, so a long chat should answer about as
fast as a short one. Floor: turn 20 ≤ 1.5 × turn 2. Each ratio is the median of several chats.
"""

from __future__ import annotations

import queue

from _common import starter_model, verdict

from app.engine.inference.events import Done, Failed
from app.engine.serving.host import EngineHost
from app.engine.types import ChatMessage, LoadSettings, Sampling

QUESTIONS = [
    "Tell me one fact about the sea.", "Why is the sky blue?", "Name a fruit that is red.",
    "What do bees make?", "How many legs does a spider have?", "What is ice made of?",
]
SAMPLING = Sampling(temperature=0.7, seed=1, max_tokens=40)


def run_chat(host: EngineHost, events: queue.Queue, turns: int) -> dict[int, float]:
    history = [ChatMessage("system", "You are a helpful assistant. Answer briefly.")]
    ttft: dict[int, float] = {}
    for turn in range(1, turns + 1):
        history.append(ChatMessage("user", QUESTIONS[turn % len(QUESTIONS)]))
        job = host.chat(history, SAMPLING)
        while True:
            event = events.get(timeout=120)
            if getattr(event, "job_id", None) != job:
                continue
            if isinstance(event, Failed):
                raise SystemExit(f"turn {turn} failed: {event.message}")
            if isinstance(event, Done):
                break
        ttft[turn] = event.stats.time_to_first_token
        history.append(ChatMessage("assistant", event.text))
    return ttft


def main() -> int:
    events: queue.Queue = queue.Queue()
    host = EngineHost(events.put)
    host.load(starter_model(), LoadSettings(n_ctx=8192))
    ratios = []
    try:
        for chat in range(3):
            ttft = run_chat(host, events, 20)
            ratio = ttft[20] / ttft[2]
            ratios.append(ratio)
            print(f"chat {chat + 1}: turn 2 {ttft[2] * 1000:.1f} ms, "
                  f"turn 20 {ttft[20] * 1000:.1f} ms, ratio {ratio:.2f}")
    finally:
        host.shutdown()
    ratios.sort()
    return verdict("turns_ttft_ratio", ratios[len(ratios) // 2], 1.5, higher_is_better=False)


if __name__ == "__main__":
    raise SystemExit(main())
