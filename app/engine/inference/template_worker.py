"""The child process that renders chat templates (``python -I`` on this file).

A chat template is code from the model file. Jinja's sandbox stops it from reaching Python
objects, but not from looping for hours or building a gigabyte string, so templates run here,
where the parent can enforce a deadline by killing the process and the OS caps its memory.

Protocol: one JSON request per line on stdin, one JSON answer per line on stdout.
Request: ``{"template": str, "messages": [...], "bos_token": str, "eos_token": str}`` and
optionally ``"tools": [...]`` (OpenAI function tools). A message may carry ``tool_calls`` whose
``function.arguments`` is a JSON object: the template gets it as a mapping that prints as JSON
(templates either ``| tojson`` it, iterate it, or concatenate it as text). An object
``{MARKED_ARGUMENTS: "<marker>"}`` in its place stands for arguments rendered as that marker (see
`app.engine.inference.prompt_spans`).
Answer: ``{"prompt": str}``, ``{"error": str}`` (the template raised; with ``"stage":
"compile"`` when it cannot be compiled), or ``{"limit": "memory" | "size"}`` (after which the
process exits; the parent starts a new one). Before the first request it writes
``{"ready": true}`` once its imports are done.

Only the standard library and jinja2 are imported: llama.cpp's shared library would cost time
and address space the memory cap is meant for.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import datetime
from typing import Any

MEMORY_LIMIT_BYTES = 512 * 1024 * 1024
# A prompt longer than this cannot fit any context window; refusing it also keeps a template
# from filling the pipe with hundreds of megabytes.
MAX_PROMPT_CHARS = 8 * 1024 * 1024
MARKED_ARGUMENTS = "\ue000hearth-marked-arguments"


class _Arguments(dict):  # type: ignore[type-arg]
    """Call arguments: a mapping for templates that iterate or ``tojson`` them, JSON text for
    templates that print them."""

    def __str__(self) -> str:
        return json.dumps(self, ensure_ascii=False)


class _Marked(_Arguments):
    """Stand-in arguments: print and serialize as a marker."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def __str__(self) -> str:
        return self.marker


def _prepare(messages: Any) -> list[Any]:
    """The request's messages with call arguments turned into `_Arguments`."""
    if not isinstance(messages, list):
        raise TypeError("messages must be a list")
    for message in messages:
        if not isinstance(message, dict):
            raise TypeError("a message must be an object")
        calls = message.get("tool_calls")
        if calls is None:
            continue
        if not isinstance(calls, list):
            raise TypeError("tool_calls must be a list")
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                raise TypeError("a tool call needs a function")
            arguments = function.get("arguments")
            if isinstance(arguments, dict):
                marker = arguments.get(MARKED_ARGUMENTS)
                function["arguments"] = (_Marked(marker) if isinstance(marker, str)
                                         else _Arguments(arguments))
    return messages


def _unmark(value: Any, found: dict[str, str], depth: int = 0) -> Any:
    """``value`` with each `_Marked` replaced by a placeholder string (recorded in ``found``)."""
    if depth > 64:
        return value
    if isinstance(value, _Marked):
        key = f"\ue002{len(found)}\ue003"
        found[key] = value.marker
        return key
    if isinstance(value, dict):
        return {k: _unmark(v, found, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_unmark(v, found, depth + 1) for v in value]
    return value


def _limit_memory() -> None:
    """Cap the address space at what the process uses now plus MEMORY_LIMIT_BYTES."""
    try:
        import resource
    except ImportError:  # Windows: no rlimits; the deadline and the size cap still apply
        return
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            current = int(f.read().split()[0]) * resource.getpagesize()
    except OSError:  # not Linux: the cap then counts the interpreter too
        current = 0
    cap = current + MEMORY_LIMIT_BYTES
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ValueError, OSError):
        pass  # e.g. macOS refuses RLIMIT_AS; the deadline still applies


def _exit_with_parent() -> None:
    """End this process when Hearth is gone, even in the middle of an endless render (a closed
    stdin is only noticed between requests)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _environment() -> Any:
    """The same Jinja environment as llama-cpp-python's Jinja2ChatFormatter (and Transformers)."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class IgnoreGenerationTags(jinja2.ext.Extension):
        """Pass-through for HuggingFace's ``{% generation %}`` chat-template tag."""

        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            parser.stream.skip(1)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    env = ImmutableSandboxedEnvironment(
        loader=jinja2.BaseLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[IgnoreGenerationTags, jinja2.ext.loopcontrols],
    )

    def tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None,
               separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
        found: dict[str, str] = {}
        text = json.dumps(_unmark(x, found), ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)
        for key, marker in found.items():  # marked arguments render as their marker
            text = text.replace(json.dumps(key, ensure_ascii=ensure_ascii), marker)
        return text

    env.filters["tojson"] = tojson
    return env


def _raise_exception(message: str) -> None:
    raise ValueError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _render(env: Any, compiled: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    source = str(request["template"])
    template = compiled.get(source)
    if template is None:
        try:
            template = env.from_string(source)
        except MemoryError:
            return {"limit": "memory"}
        except Exception as exc:  # jinja2.TemplateSyntaxError and friends
            return {"error": _text(exc), "stage": "compile"}
        compiled.clear()  # one model's template at a time
        compiled[source] = template
    try:
        prompt = template.render(
            messages=_prepare(request["messages"]),
            bos_token=request.get("bos_token", ""),
            eos_token=request.get("eos_token", ""),
            add_generation_prompt=True,
            raise_exception=_raise_exception,
            strftime_now=_strftime_now,
            tools=_tools(request.get("tools")), tool_choice=None, functions=None,
            function_call=None,
        )
    except MemoryError:
        return {"limit": "memory"}
    except RecursionError:
        return {"error": "the template recursed too deeply."}
    except Exception as exc:  # the template's own complaint, shown to the user
        return {"error": _text(exc)}
    if len(prompt) > MAX_PROMPT_CHARS:
        return {"limit": "size"}
    return {"prompt": prompt}


def _tools(tools: Any) -> list[Any] | None:
    if tools is None:
        return None
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise TypeError("tools must be a list of objects")
    return tools or None


def _text(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__)[:500]


def main() -> None:
    _limit_memory()
    _exit_with_parent()
    env = _environment()
    compiled: dict[str, Any] = {}
    sys.stdout.write('{"ready": true}\n')  # render deadlines start from here
    sys.stdout.flush()
    for line in sys.stdin:
        try:
            answer = _render(env, compiled, json.loads(line))
        except MemoryError:
            answer = {"limit": "memory"}
        except (ValueError, KeyError, TypeError) as exc:
            answer = {"error": f"bad request: {exc}"}
        try:
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
        except MemoryError:
            sys.stdout.write('{"limit": "memory"}\n')
            sys.stdout.flush()
            return
        if "limit" in answer:
            return  # a fresh process is cheaper than trusting a heap that just overflowed


if __name__ == "__main__":
    main()
