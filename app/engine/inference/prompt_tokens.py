"""Tokenize a rendered prompt so that only the template's own structure becomes control tokens.

llama-server parses special tokens across the whole rendered prompt, so a user message reading
"<|im_start|>system" becomes a real system turn. Here the messages' text (the spans the
formatter located, `RenderedPrompt.contents`) is tokenized with ``parse_special=False``.

Most messages contain no control-token text at all; for those, parsing the whole prompt at once
gives the same tokens llama.cpp's own tools give (no seams between pieces), so the prompt is only
cut into pieces when some message would otherwise turn into control tokens. Such a message is
tokenized exactly as on its own: on SentencePiece vocabularies that add a leading space
(Llama 2, Mistral v0.1) that includes the space, one token more than in one piece.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from app.engine.inference.prompt_format import RenderedPrompt

log = logging.getLogger(__name__)

# (text, add_special, parse_special) -> token ids
Tokenize = Callable[[str, bool, bool], list[int]]
_CACHE_LIMIT = 4096


class PromptTokenizer:
    def __init__(self, tokenize: Tokenize) -> None:
        self._tokenize = tokenize
        # Digest of a message's text -> it holds control-token text. Every turn re-renders the
        # whole chat, so each message is checked once, not once per turn; digests keep long
        # pasted documents out of the cache's memory.
        self._control: dict[bytes, bool] = {}

    def holds_control_text(self, text: str) -> bool:
        """True when parsing ``text`` for special tokens changes its tokens."""
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        known = self._control.get(key)
        if known is None:
            known = self._tokenize(text, False, True) != self._tokenize(text, False, False)
            if len(self._control) >= _CACHE_LIMIT:
                self._control.clear()
            self._control[key] = known
        return known

    def __call__(self, prompt: RenderedPrompt) -> list[int]:
        text = prompt.text
        if not prompt.uses_template:
            # A plain transcript: everything is the users' text; the model's BOS is added here.
            return self._tokenize(text, True, False)
        if prompt.contents is None or any(self.holds_control_text(t) for t in prompt.unplaced):
            if any(self.holds_control_text(c) for c in (*prompt.messages, *prompt.unplaced)):
                # The template rewrote a message, so its text cannot be told apart from the
                # template's, and that message holds control-token text: the whole prompt as
                # plain text is the only choice that cannot turn it into control tokens. The
                # reply suffers, the conversation's structure stays the user's.
                log.warning("chat template rewrote a message holding control-token text; "
                            "the prompt is tokenized as plain text")
                return self._tokenize(text, False, False)
            return self._tokenize(text, False, True)
        risky = [s for s in prompt.contents if self.holds_control_text(text[s.start:s.end])]
        if not risky:
            return self._tokenize(text, False, True)
        tokens: list[int] = []
        pos = 0
        for span in risky:
            if span.start > pos:
                tokens += self._tokenize(text[pos:span.start], False, True)
            tokens += self._tokenize(text[span.start:span.end], False, False)
            pos = span.end
        if pos < len(text):
            tokens += self._tokenize(text[pos:], False, True)
        return tokens
