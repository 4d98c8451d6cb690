"""Copyable client snippets for the server's endpoints: `curl` and Python `openai`.

Pure functions (no Qt). The model id and key are quoted for the language they land in, so a
model named from outside cannot break out of the snippet when it is pasted into a shell.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

PLACEHOLDER_KEY = "no-key-needed"  # what `openai` needs when the server asks for none


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    kind: str = "llm"  # "llm", "embeddings" or "" (no model)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/v1/models", "List the models this server can serve", ""),
    Endpoint("POST", "/v1/chat/completions", "Chat with a model (stream or not)"),
    Endpoint("POST", "/v1/completions", "Continue a raw text prompt"),
    Endpoint("POST", "/v1/embeddings", "Embed text with an embedding model", "embeddings"),
    Endpoint("GET", "/api/v0/models", "Models with their state, type and quantization", ""),
    Endpoint("GET", "/health", "Is the server up? (needs no key)", ""),
)


def _body(endpoint: Endpoint, model: str) -> dict[str, object] | None:
    if endpoint.path == "/v1/chat/completions":
        return {"model": model, "messages": [{"role": "user", "content": "Say hello."}],
                "max_tokens": 64}
    if endpoint.path == "/v1/completions":
        return {"model": model, "prompt": "Once upon a time", "max_tokens": 64}
    if endpoint.path == "/v1/embeddings":
        return {"model": model, "input": "A cat sits on the mat."}
    return None


def curl_snippet(endpoint: Endpoint, base_url: str, model: str, key: str | None) -> str:
    lines = [f"curl {shlex.quote(base_url.rstrip('/') + endpoint.path)}"]
    if key and endpoint.path != "/health":
        lines.append(f"  -H {shlex.quote('Authorization: Bearer ' + key)}")
    body = _body(endpoint, model)
    if body is not None:
        lines.append("  -H 'Content-Type: application/json'")
        lines.append(f"  -d {shlex.quote(json.dumps(body, ensure_ascii=False))}")
    return " \\\n".join(lines)


def python_snippet(endpoint: Endpoint, base_url: str, model: str, key: str | None) -> str:
    """The official `openai` client against this server (or `httpx` for non-OpenAI paths)."""
    base = base_url.rstrip("/")
    head = ["from openai import OpenAI", "",
            f"client = OpenAI(base_url={base + '/v1'!r}, api_key={key or PLACEHOLDER_KEY!r})"]
    if endpoint.path == "/v1/models":
        return "\n".join([*head, "for model in client.models.list():", "    print(model.id)"])
    if endpoint.path == "/v1/chat/completions":
        return "\n".join([
            *head, "stream = client.chat.completions.create(",
            f"    model={model!r},",
            '    messages=[{"role": "user", "content": "Say hello."}],',
            "    stream=True,", ")", "for chunk in stream:",
            '    print(chunk.choices[0].delta.content or "", end="", flush=True)', "print()"])
    if endpoint.path == "/v1/completions":
        return "\n".join([
            *head, "reply = client.completions.create(",
            f"    model={model!r}, prompt='Once upon a time', max_tokens=64,", ")",
            "print(reply.choices[0].text)"])
    if endpoint.path == "/v1/embeddings":
        return "\n".join([
            *head, "result = client.embeddings.create(",
            f"    model={model!r}, input=['A cat sits on the mat.'],", ")",
            "print(len(result.data[0].embedding))"])
    headers = f", headers={{'Authorization': {'Bearer ' + key!r}}}" if (
        key and endpoint.path != "/health") else ""
    return "\n".join(["import httpx", "",
                      f"print(httpx.get({base + endpoint.path!r}{headers}).json())"])
