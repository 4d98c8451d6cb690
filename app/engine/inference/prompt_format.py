"""Turn a list of chat messages into the text a model is prompted with.

A model with a chat template gets it rendered in the same sandboxed Jinja environment as
llama-cpp-python's Jinja2ChatFormatter (and Transformers). A base model without one (the starter
model) gets a plain transcript format that the UI labels as such, with stop strings so the model
does not write the user's next turn.

Before every render the conversation is normalized (`normalize`): strict templates (Gemma,
Mistral) raise unless user and assistant turns alternate starting with the user, and Hearth's
history can hold two user turns in a row when a reply failed or came back empty.

A chat template is untrusted code from the model file: it runs in a child process with a
deadline and a memory cap (`app.engine.inference.template_sandbox`). The rendered prompt records
where each message's text sits in it (`RenderedPrompt.contents`), so that text is tokenized as
plain text and only the template's own structure can become control tokens
(`app.engine.inference.prompt_tokens`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.engine.inference.prompt_spans import TextSpan, match_contents
from app.engine.inference.reasoning import prompt_opens_thinking, reasoning_for_template
from app.engine.inference.template_sandbox import (
    RENDER_DEADLINE_S,
    TemplateFailure,
    TemplateSandbox,
)
from app.engine.inference.template_worker import MAX_PROMPT_CHARS, MEMORY_LIMIT_BYTES
from app.engine.inference.tool_messages import (
    as_plain_turns,
    template_messages,
    template_supports_tools,
    tool_system_prompt,
)
from app.engine.types import ChatMessage

PLAIN_FORMAT_LABEL = "Plain completion format (this model has no chat template)"
_PLAIN_NAMES = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}
Tools = Sequence[Mapping[str, Any]]
PLAIN_STOPS = ["\nUser:", "\nSystem:", "\nAssistant:"]


class PromptFormatError(ValueError):
    """The model's chat template cannot be compiled or cannot format this conversation.

    The message is meant for the user; the template's own complaint is at its end.
    """


class PromptCancelled(PromptFormatError):
    """The caller cancelled while the template was rendering."""


@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    uses_template: bool  # template text carries its own BOS/special tokens
    stop: list[str] = field(default_factory=list)
    # Where the messages' own text sits in ``text`` (it is tokenized as plain text); None when
    # the template rewrote a message so that its text cannot be told from the template's.
    contents: tuple[TextSpan, ...] | None = ()
    messages: tuple[str, ...] = ()  # the messages' text as the template was given it
    # Untrusted text the template placed where no span can show (tool definitions): if any of
    # it holds control-token text, the whole prompt is tokenized as plain text.
    unplaced: tuple[str, ...] = ()

    @property
    def opens_thinking(self) -> bool:
        """The template ends the prompt inside "<think>": the reply starts as reasoning."""
        return self.uses_template and prompt_opens_thinking(self.text)


Cancelled = Callable[[], bool]


class PromptFormatter:
    """Renders conversations; raises `PromptFormatError` for a template that cannot work.

    BOS/EOS text is only substituted at render time, so a formatter can be built (and its
    template checked) before the model's vocabulary is loaded; `set_special_tokens` fills them in.
    A formatter with a template owns a sandbox process: `close` it when done.
    """

    def __init__(
        self,
        chat_template: str | None,
        bos_token: str = "",
        eos_token: str = "",
        *,
        cancelled: Cancelled | None = None,
        deadline_s: float = RENDER_DEADLINE_S,
    ) -> None:
        self._template = chat_template or None
        self._bos, self._eos = bos_token, eos_token
        self._sandbox: TemplateSandbox | None = None
        self._fold_system = False
        if self._template:
            self._sandbox = TemplateSandbox(deadline_s)
            try:
                self._fold_system = self._rejects_system_role(cancelled)
            except BaseException:
                self.close()
                raise

    def set_special_tokens(self, bos_token: str, eos_token: str) -> None:
        self._bos, self._eos = bos_token, eos_token

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()

    def _run(self, dicts: list[dict[str, Any]], cancelled: Cancelled | None,
             tools: Tools | None = None) -> str:
        assert self._sandbox is not None and self._template is not None
        return self._sandbox.render(self._template, dicts, self._bos, self._eos, cancelled,
                                    [dict(t) for t in tools] if tools else None)

    def _rejects_system_role(self, cancelled: Cancelled | None) -> bool:
        """True for templates that fail with a system turn but render the same chat without it;
        for those the system prompt is folded into the first user turn.

        Raises `PromptFormatError` for a template that cannot be read or breaks a limit."""
        user = {"role": "user", "content": "Hi"}
        try:
            self._run([{"role": "system", "content": "Be brief."}, user], cancelled)
            return False
        except TemplateFailure as exc:
            if exc.kind != "error":
                raise _format_error(exc) from exc
        try:
            self._run([user], cancelled)
        except TemplateFailure as exc:
            if exc.kind != "error":
                raise _format_error(exc) from exc
            return False  # it fails for some other reason; render() will say which
        return True

    @property
    def template(self) -> str | None:
        """The model's own chat template (untrusted text), or None for the plain format."""
        return self._template

    @property
    def supports_tools(self) -> bool:
        """The template reads a ``tools`` variable: it describes tools to the model itself.
        Others get `tool_system_prompt` in the system turn."""
        return template_supports_tools(self._template)

    @property
    def folds_system(self) -> bool:
        return self._fold_system

    @property
    def stop(self) -> list[str]:
        return [] if self._template else list(PLAIN_STOPS)

    @property
    def label(self) -> str:
        return "Model's chat template" if self._template else PLAIN_FORMAT_LABEL

    def render(
        self, messages: Sequence[ChatMessage], cancelled: Cancelled | None = None,
        tools: Tools | None = None,
    ) -> RenderedPrompt:
        """``tools``: OpenAI function tools (``{"type": "function", "function": {...}}``)
        the model may call; given to the template, or described in the system turn when the
        template has no tool support. Tool calls and ``tool`` turns in ``messages`` are
        rendered either way."""
        native = bool(tools) and self.supports_tools
        turns = reasoning_for_template(normalize(messages), self._template)
        if not self.supports_tools:
            turns = as_plain_turns(turns)
        if tools and not native:
            turns = _with_system(turns, tool_system_prompt(tools))
        if self._template is None:
            return RenderedPrompt(_plain(turns), False, list(PLAIN_STOPS))
        if self._fold_system:
            turns = fold_system(turns)
        built = template_messages(turns)
        given = tools if native else None
        try:
            text = self._run(built.messages, cancelled, given)
        except TemplateFailure as exc:
            raise _format_error(exc) from exc
        try:
            shape = self._run(built.marked, cancelled, given)
        except TemplateFailure as exc:
            if exc.kind == "cancelled":
                raise _format_error(exc) from exc
            shape = ""  # it fails on stand-in text: its shape is unknown, so no spans
        contents = built.contents
        return RenderedPrompt(text, True, [], match_contents(text, shape, contents),
                              tuple(contents),
                              tuple(json.dumps(t, ensure_ascii=False) for t in given or ()))


def _format_error(exc: TemplateFailure) -> PromptFormatError:
    if exc.kind == "cancelled":
        return PromptCancelled("Cancelled while the chat template was running.")
    if exc.kind == "syntax":
        return PromptFormatError(f"This model's chat template cannot be read: {_reason(exc)}")
    if exc.kind == "error":
        return PromptFormatError(
            f"This model's chat template could not format the conversation: {_reason(exc)}")
    limit = {
        "time": f"took longer than {exc.detail or RENDER_DEADLINE_S} s",
        "memory": f"used more than {MEMORY_LIMIT_BYTES // 2**20} MB of memory",
        "size": f"wrote a prompt of more than {MAX_PROMPT_CHARS:,} characters",
    }.get(exc.kind)
    if limit is None:
        return PromptFormatError(
            f"This model's chat template stopped unexpectedly ({exc.detail}).")
    return PromptFormatError(
        f"This model's chat template {limit} and was stopped. The template is part of the "
        "model file; a different download or quantization of the model may have a sound one.")


def normalize(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """The conversation in the shape strict templates accept.

    Consecutive turns of the same role are merged (joined by a blank line), and assistant turns
    before the first user turn are left out, so after any system turns the user speaks first and
    user and assistant alternate. Turns that call tools, and tool results (each answers its own
    call), are never merged; tool results before the first user turn are left out too.
    """
    out: list[ChatMessage] = []
    seen_user = False
    for m in messages:
        if m.role in ("assistant", "tool") and not seen_user:
            continue
        if m.role == "user":
            seen_user = True
        if (out and out[-1].role == m.role and m.role != "tool"
                and not out[-1].tool_calls and not m.tool_calls):
            out[-1] = ChatMessage(m.role, _join(out[-1].content, m.content))
        else:
            out.append(m)
    return out


def _with_system(turns: list[ChatMessage], text: str) -> list[ChatMessage]:
    """``text`` merged into the system turn (one is added when there is none)."""
    if turns and turns[0].role == "system":
        return [ChatMessage("system", _join(turns[0].content, text)), *turns[1:]]
    return [ChatMessage("system", text), *turns]


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
