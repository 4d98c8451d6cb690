"""Turn a list of chat messages into the text a model is prompted with.

A model with a chat template gets it rendered by llama-cpp-python's Jinja2 formatter (a sandboxed
environment). A base model without one (the starter model) gets a plain transcript format that the
UI labels as such, with stop strings so the model does not write the user's next turn.

Before every render the conversation is normalized (`normalize`): strict templates (Gemma,
Mistral) raise unless user and assistant turns alternate starting with the user, and Hearth's
history can hold two user turns in a row when a reply failed or came back empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from app.engine.reasoning import prompt_opens_thinking
from app.engine.types import ChatMessage

PLAIN_FORMAT_LABEL = "Plain completion format (this model has no chat template)"
_PLAIN_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}
PLAIN_STOPS = ["\nUser:", "\nSystem:", "\nAssistant:"]


class PromptFormatError(ValueError):
    """The model's chat template cannot be compiled or cannot format this conversation.

    The message is meant for the user; the template's own complaint is at its end.
    """


@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    uses_template: bool  # template text carries its own BOS/special tokens
    stop: list[str] = field(default_factory=list)

    @property
    def opens_thinking(self) -> bool:
        """The template ends the prompt inside "<think>": the reply starts as reasoning."""
        return self.uses_template and prompt_opens_thinking(self.text)


class PromptFormatter:
    """Renders conversations; raises `PromptFormatError` for a template Jinja cannot compile.

    BOS/EOS text is only substituted at render time, so a formatter can be built (and its
    template checked) before the model's vocabulary is loaded; `set_special_tokens` fills them in.
    """

    def __init__(
        self, chat_template: str | None, bos_token: str = "", eos_token: str = ""
    ) -> None:
        self._template: Jinja2ChatFormatter | None = None
        self._fold_system = False
        if chat_template:
            try:
                self._template = Jinja2ChatFormatter(
                    template=chat_template, eos_token=eos_token, bos_token=bos_token
                )
            except Exception as exc:  # jinja2.TemplateSyntaxError and friends
                raise PromptFormatError(
                    f"This model's chat template cannot be read: {_reason(exc)}"
                ) from exc
            self._fold_system = self._rejects_system_role()
        self._eos = eos_token

    def set_special_tokens(self, bos_token: str, eos_token: str) -> None:
        self._eos = eos_token
        if self._template is not None:
            self._template.bos_token = bos_token
            self._template.eos_token = eos_token

    def _rejects_system_role(self) -> bool:
        """True for templates that fail with a system turn but render the same chat without it;
        for those the system prompt is folded into the first user turn."""
        assert self._template is not None
        user = {"role": "user", "content": "Hi"}
        try:
            self._template(messages=[{"role": "system", "content": "Be brief."}, user])
            return False
        except Exception:
            pass
        try:
            self._template(messages=[user])
        except Exception:
            return False  # it fails for some other reason; render() will say which
        return True

    @property
    def folds_system(self) -> bool:
        return self._fold_system

    @property
    def stop(self) -> list[str]:
        return [] if self._template else list(PLAIN_STOPS)

    @property
    def label(self) -> str:
        return "Model's chat template" if self._template else PLAIN_FORMAT_LABEL

    def render(self, messages: Sequence[ChatMessage]) -> RenderedPrompt:
        if self._template is None:
            return RenderedPrompt(_plain(messages), False, list(PLAIN_STOPS))
        turns = normalize(messages)
        if self._fold_system:
            turns = fold_system(turns)
        dicts = [{"role": m.role, "content": m.content} for m in turns]
        try:
            result = self._template(messages=dicts)
        except Exception as exc:
            raise PromptFormatError(
                f"This model's chat template could not format the conversation: {_reason(exc)}"
            ) from exc
        return RenderedPrompt(result.prompt, True, [])


def normalize(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """The conversation in the shape strict templates accept.

    Consecutive turns of the same role are merged (joined by a blank line), and assistant turns
    before the first user turn are left out, so after any system turns the user speaks first and
    user and assistant alternate.
    """
    out: list[ChatMessage] = []
    seen_user = False
    for m in messages:
        if m.role == "assistant" and not seen_user:
            continue
        if m.role == "user":
            seen_user = True
        if out and out[-1].role == m.role:
            out[-1] = ChatMessage(m.role, _join(out[-1].content, m.content))
        else:
            out.append(ChatMessage(m.role, m.content))
    return out


def fold_system(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """The system turns' text moved into the first user turn (or a user turn of its own)."""
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    rest = [m for m in messages if m.role != "system"]
    if not system:
        return rest
    if rest and rest[0].role == "user":
        rest[0] = ChatMessage("user", _join(system, rest[0].content))
    else:
        rest.insert(0, ChatMessage("user", system))
    return normalize(rest)


def _join(a: str, b: str) -> str:
    return f"{a}\n\n{b}" if a and b else a or b


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if text.endswith((".", "!", "?")) else text + "."


def _plain(messages: Sequence[ChatMessage]) -> str:
    parts = [f"{_PLAIN_NAMES[m.role]}: {m.content.strip()}" for m in messages]
    parts.append("Assistant:")
    return "\n".join(parts)
