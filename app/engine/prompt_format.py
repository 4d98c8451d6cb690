"""Turn a list of chat messages into the text a model is prompted with.

A model with a chat template gets it rendered by llama-cpp-python's Jinja2 formatter (a sandboxed
environment). A base model without one (the starter model) gets a plain transcript format that the
UI labels as such, with stop strings so the model does not write the user's next turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from app.engine.types import ChatMessage

PLAIN_FORMAT_LABEL = "Plain completion format (this model has no chat template)"
_PLAIN_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}
PLAIN_STOPS = ["\nUser:", "\nSystem:", "\nAssistant:"]


@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    uses_template: bool  # template text carries its own BOS/special tokens
    stop: list[str] = field(default_factory=list)


class PromptFormatter:
    def __init__(self, chat_template: str | None, bos_token: str, eos_token: str) -> None:
        self._template: Jinja2ChatFormatter | None = None
        if chat_template:
            self._template = Jinja2ChatFormatter(
                template=chat_template, eos_token=eos_token, bos_token=bos_token
            )
        self._eos = eos_token

    @property
    def stop(self) -> list[str]:
        return [] if self._template else list(PLAIN_STOPS)

    @property
    def label(self) -> str:
        return "Model's chat template" if self._template else PLAIN_FORMAT_LABEL

    def render(self, messages: Sequence[ChatMessage]) -> RenderedPrompt:
        if self._template is not None:
            dicts = [{"role": m.role, "content": m.content} for m in messages]
            try:
                result = self._template(messages=dicts)
                return RenderedPrompt(result.prompt, True, [])
            except Exception:
                # Some templates refuse a system role; fold it into the first user turn.
                folded = _fold_system(messages)
                dicts = [{"role": m.role, "content": m.content} for m in folded]
                return RenderedPrompt(self._template(messages=dicts).prompt, True, [])
        return RenderedPrompt(_plain(messages), False, list(PLAIN_STOPS))


def _fold_system(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    rest = [m for m in messages if m.role != "system"]
    if system and rest and rest[0].role == "user":
        rest[0] = ChatMessage("user", f"{system}\n\n{rest[0].content}")
    return rest


def _plain(messages: Sequence[ChatMessage]) -> str:
    parts = [f"{_PLAIN_NAMES[m.role]}: {m.content.strip()}" for m in messages]
    parts.append("Assistant:")
    return "\n".join(parts)
