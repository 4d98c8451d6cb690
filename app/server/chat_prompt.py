"""OpenAI chat messages → the model's prompt, dropping the oldest turns only when asked to."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from app.engine.inference.context_window import (
    REPLY_MIN,
    ContextOverflow,
    fit_conversation,
    reply_reserve,
)
from app.engine.inference.prompt_format import PromptFormatError
from app.engine.serving.loaded_model import ChatPrompt, LoadedModel
from app.engine.tools.spec import parse_tool_call
from app.engine.types import ChatMessage, DecodedImage, ToolCall
from app.server.errors import ApiError, invalid
from app.server.generation import LATER, overflow_error
from app.server.image_parts import (
    MAX_IMAGES,
    MAX_REQUEST_PIXELS,
    decode_image_part,
    over_budget,
)
from app.server.schemas import ChatMessageIn

if TYPE_CHECKING:
    from app.server.image_fetch import ImageFetcher

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant",
          "tool": "tool"}


def chat_messages(messages: Sequence[ChatMessageIn],
                  fetcher: ImageFetcher | None = None) -> list[ChatMessage]:
    """The turns, tool calls and results included, user turns' images decoded (web addresses
    fetched, one after another, only with a ``fetcher``); anything else is refused, naming the
    message (legacy "function" turns, audio or file parts, a bad image, a turn with no content).
    """
    turns: list[ChatMessage] = []
    n_images = 0
    pixels = 0
    for i, message in enumerate(messages):
        if message.role not in _ROLES:
            raise invalid(f"messages[{i}].role", "Legacy 'function' messages are not supported; "
                          "send 'tool' messages with a tool_call_id.", "unsupported_parameter")
        content = message.content
        images: list[DecodedImage] = []
        if isinstance(content, list):
            texts = []
            for j, part in enumerate(content):
                if part.type == "image_url":
                    where = f"messages[{i}].content[{j}]"
                    if message.role != "user":
                        raise invalid(where, "Images are read in user messages only.")
                    n_images += 1
                    if n_images > MAX_IMAGES:
                        raise invalid(where, f"At most {MAX_IMAGES} images per request.")
                    image = decode_image_part(part, where, fetcher)
                    pixels += image.width * image.height
                    if pixels > MAX_REQUEST_PIXELS:
                        raise over_budget(where, pixels, MAX_REQUEST_PIXELS)
                    images.append(image)
                    continue
                if part.type != "text" or part.text is None:
                    raise invalid(f"messages[{i}].content",
                                  f"Content parts of type '{part.type[:40]}' (audio, files) "
                                  f"{LATER}; send text or images.", "unsupported_parameter")
                texts.append(part.text)
            content = "\n".join(texts)
        calls = _tool_calls(message, i)
        if content is None and not calls:
            raise invalid(f"messages[{i}].content", "A message needs text content.")
        turns.append(ChatMessage(_ROLES[message.role], content or "",  # type: ignore[arg-type]
                                 tool_calls=calls, tool_call_id=message.tool_call_id or "",
                                 name=message.name or "", images=tuple(images)))
    return turns


def check_vision(model: LoadedModel, turns: Sequence[ChatMessage],
                 vision_models: Callable[[], list[str]]) -> None:
    """A 400 when ``turns`` carry images and ``model`` was loaded without a vision projector,
    naming the models on this server that can read them (``vision_models``)."""
    if model.projector is not None or not any(turn.images for turn in turns):
        return
    others = [name for name in vision_models() if name != model.key]
    offer = (f" Models here that read images: {', '.join(others[:10])}." if others else
             " No model on this server has a vision projector (mmproj) beside it.")
    raise ApiError(400, f"Model '{model.key}' cannot read images: it has no vision projector "
                        f"(mmproj).{offer}", param="messages", code="model_not_vision")


def _tool_calls(message: ChatMessageIn, i: int) -> tuple[ToolCall, ...]:
    if not message.tool_calls:
        return ()
    if message.role != "assistant":
        raise invalid(f"messages[{i}].tool_calls", "Only assistant messages carry tool_calls.")
    try:
        return tuple(parse_tool_call(call, f"messages[{i}].tool_calls[{j}]")
                     for j, call in enumerate(message.tool_calls))
    except ValueError as exc:
        raise invalid(str(exc).split(":", 1)[0], str(exc)) from exc


def _render(model: LoadedModel, turns: Sequence[ChatMessage],
            tools: Sequence[dict[str, Any]] | None) -> ChatPrompt:
    try:
        return model.chat_prompt(turns, tools=tools)
    except PromptFormatError as exc:
        raise invalid("messages", str(exc), "prompt_format_error") from exc


def fit_chat(model: LoadedModel, turns: list[ChatMessage], rolling_window: bool,
             max_tokens: int | None = None,
             tools: Sequence[dict[str, Any]] | None = None) -> ChatPrompt:
    """The prompt for ``turns``; a 400 if it can't fit, unless ``rolling_window`` lets the
    oldest non-system turns go (the last turn always stays) to leave the reply its room.

    The engine's rule decides what fits (`fit_conversation`, as the window's chat does); each
    conversation is rendered once, so a prompt that fits, or one turn alone, renders once.
    """
    rendered: dict[int, ChatPrompt] = {}  # by number of turns: candidates are suffixes

    def tokens(kept: Sequence[ChatMessage]) -> list[int]:
        prompt = rendered[len(kept)] = _render(model, kept, tools)
        return prompt.tokens

    reserve = reply_reserve(model.n_ctx, max_tokens) if rolling_window else REPLY_MIN
    try:
        fitted = fit_conversation(turns, tokens, model.n_ctx, reserve,
                                  "truncate_oldest" if rolling_window else "stop")
    except ContextOverflow as exc:
        if any(turn.images for turn in turns):  # the engine's message has the images' numbers
            raise ApiError(400, str(exc), param="messages",
                           code="context_length_exceeded") from exc
        raise overflow_error(exc.prompt_tokens, model.n_ctx, model.key, "messages",
                             exc.reserve) from exc
    return rendered[len(fitted.messages)]
