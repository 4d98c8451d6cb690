"""Which tool-call markup a model writes, told from its chat template (and architecture).

- hermes: Qwen 2.5/3, QwQ, Hermes 2 Pro/3, Granite 4:
  ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
- llama3: Llama 3.1/3.2/3.3 Instruct: ``{"name": ..., "parameters": {...}}`` as the answer,
  or after ``<|python_tag|>``
- mistral: Mistral 7B v0.3, Nemo, Small, Devstral, Ministral:
  ``[TOOL_CALLS][{...}]`` or ``[TOOL_CALLS]name[ARGS]{...}``
- granite: Granite 3.x, Phi-4-mini: ``<|tool_call|>[{"name": ..., "arguments": {...}}]``
- deepseek: DeepSeek V3/V3.1/R1 and the R1 distills:
  ``<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>…<｜tool▁sep｜>…<｜tool▁call▁end｜>…``
- generic: any other template (the tools are described in the system prompt):
  ``{"tool_calls": [...]}`` or ``{"name": ..., "arguments": {...}}``
"""

from __future__ import annotations

from typing import Literal

from app.engine.tools.deepseek import DeepSeekParser
from app.engine.tools.generic import GenericParser
from app.engine.tools.granite import GraniteParser
from app.engine.tools.hermes import HermesParser
from app.engine.tools.llama3 import Llama3Parser
from app.engine.tools.mistral import MistralParser
from app.engine.tools.parser_base import FamilyParser

Family = Literal["hermes", "llama3", "mistral", "granite", "deepseek", "generic"]
FAMILIES: tuple[Family, ...] = ("hermes", "llama3", "mistral", "granite", "deepseek", "generic")

_PARSERS: dict[str, FamilyParser] = {
    p.name: p for p in (HermesParser(), Llama3Parser(), MistralParser(), GraniteParser(),
                        DeepSeekParser(), GenericParser())
}
def detect_family(template: str | None, architecture: str = "") -> Family:
    """The family whose markup this model's replies use; "generic" when unknown."""
    t = template or ""
    arch = architecture.lower()
    if "[TOOL_CALLS]" in t:
        return "mistral"
    if "tool▁calls▁begin" in t:
        return "deepseek"
    if "<|tool_call|>" in t:
        return "granite"
    if "<tool_call>" in t:
        return "hermes"
    if "<|python_tag|>" in t or ("<|start_header_id|>" in t and "ipython" in t):
        return "llama3"
    if arch.startswith("phi") and "<|tool|>" in t:
        return "granite"  # Phi-4-mini: tools in the system turn, calls in <|tool_call|>
    return "generic"


def parser_for(family: str) -> FamilyParser:
    """The parser for a family name (see `FAMILIES`); `ValueError` for an unknown one."""
    try:
        return _PARSERS[family]
    except KeyError:
        raise ValueError(f"unknown tool-call family {family!r}") from None
