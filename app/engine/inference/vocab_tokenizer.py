"""A model's tokenizer alone: its vocabulary loaded without weights (llama.cpp's vocab_only),
to count a text's tokens on any thread while the model itself runs on the engine host's.

Front ends use it to measure what fits the chat model's context (documents, issue 13) without
asking the host's thread. Text is tokenized as plain text, never parsing control tokens.
"""

from __future__ import annotations

from pathlib import Path

import llama_cpp

from app.engine.inference import llama_log
from app.engine.inference.llama_errors import explain_failure
from app.engine.inference.runtime import LoadError, tokenize

__all__ = ["VocabTokenizer"]


class VocabTokenizer:
    def __init__(self, path: str | Path) -> None:
        """`LoadError` (for the user) when the file's vocabulary cannot be read."""
        llama_log.install()
        self.path = str(path)
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        llama_log.take_recent_errors()
        self._model = llama_cpp.llama_model_load_from_file(self.path.encode(), params)
        if not self._model:
            raise LoadError(explain_failure("read the model's vocabulary", self.path))
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)

    def count_tokens(self, text: str) -> int:
        if self._model is None:
            raise ValueError("the tokenizer is closed")
        return len(tokenize(self._vocab, text, add_special=False, parse_special=False))

    def close(self) -> None:
        if self._model is not None:
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> VocabTokenizer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
