"""A loaded model and its context, driven through llama.cpp's C API: loading, the chat template,
tokens. Decoding is the serving decode loop's (`app.engine.serving.decode_loop`), the one
generation loop: it samples with llama.cpp's own sampler chain straight from the context, so no
logits row is copied into Python per token (llama-cpp-python's high-level `Llama` copies the whole
vocabulary row each step, which costs ~10% on a 262k-token vocabulary).

Once loaded, its context belongs to one thread: its decode loop's (tokenizing and the template
are safe from others).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import llama_cpp
import psutil

from app.engine.gguf.info import read_model_info
from app.engine.inference import llama_log
from app.engine.inference.arch_support import architecture_supported, unsupported_message
from app.engine.inference.llama_errors import explain_failure
from app.engine.inference.prompt_format import PromptFormatError, PromptFormatter, RenderedPrompt
from app.engine.inference.prompt_tokens import PromptTokenizer
from app.engine.sizing.memory_estimate import effective_ctx
from app.engine.types import ChatMessage, LoadSettings, ModelInfo

__all__ = ["GenerationError", "LoadError", "ModelUnloaded", "Runtime", "explain_failure"]


class LoadError(RuntimeError):
    """The model could not be loaded; the message is meant for the user."""


class GenerationError(RuntimeError):
    """llama.cpp failed while decoding; the message is meant for the user."""


class ModelUnloaded(GenerationError):
    """The model was unloaded (from the window, the API or after its idle time) while something
    still held it: asking it for tokens now would read freed memory and crash the process."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{Path(path).name} was unloaded. Load it again to use it.")


def default_threads() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


class Runtime:
    def __init__(
        self,
        path: str | Path,
        settings: LoadSettings,
        progress: Callable[[float], bool] | None = None,
        cancelled: Callable[[], bool] | None = None,
        sequences: int = 1,
    ) -> None:
        """``cancelled`` is polled while the chat template is checked (it runs in a child
        process); ``progress`` returning False aborts loading the weights. ``sequences``: how
        many sequences the context decodes together, each with ``settings.n_ctx`` tokens of its
        own KV cache. It decodes nothing itself: the serving pool's decode loop drives it."""
        llama_log.install()
        self.path = str(path)
        self.settings = settings
        self.sequences = max(1, sequences)
        # Any thread may tokenize while another unloads the model: close() waits for it.
        self._open_lock = threading.Lock()
        self.info: ModelInfo = read_model_info(self.path)  # GGUFError for bad files
        self._model = None
        self._ctx = None
        self.formatter: PromptFormatter | None = None
        # Everything that can be refused without the weights is checked before loading them.
        kv_type = _KV_TYPES.get(settings.kv_cache_type)
        if kv_type is None:
            raise LoadError(f"Unknown KV-cache type {settings.kv_cache_type!r}: "
                            f"choose one of {', '.join(_KV_TYPES)}")
        if not architecture_supported(self.info.architecture):
            raise LoadError(f"Cannot load {Path(self.path).name}: "
                            f"{unsupported_message(self.info.architecture)}.")
        try:
            self.formatter = PromptFormatter(self.info.chat_template, cancelled=cancelled)
        except PromptFormatError as exc:
            raise LoadError(str(exc)) from exc
        try:
            self._load(progress, kv_type)
        except BaseException:
            self.formatter.close()
            raise
        try:
            self._vocab = llama_cpp.llama_model_get_vocab(self._model)
            self.n_ctx = llama_cpp.llama_n_ctx_seq(self._ctx)  # each sequence's own
            self._prompt_tokenizer = PromptTokenizer(
                lambda text, add, parse: self.tokenize(text, add_special=add,
                                                       parse_special=parse))
            self.formatter.set_special_tokens(
                bos_token=self._token_text(llama_cpp.llama_vocab_bos(self._vocab)),
                eos_token=self._token_text(llama_cpp.llama_vocab_eos(self._vocab)),
            )
        except BaseException:
            self.close()
            raise

    # -- loading -------------------------------------------------------------------------------
    def _load(self, progress: Callable[[float], bool] | None, kv_type: int) -> None:
        s = self.settings
        mparams, self._progress_cb = model_params(s, progress)
        if self.sequences > 1:
            # llama.cpp's repacked CPU weights multiply rows in groups of four and the rest one
            # by one, so a token's logits would depend on how many others share its batch.
            mparams.use_extra_bufts = False
        cparams = llama_cpp.llama_context_default_params()
        n_ctx, n_batch = effective_ctx(self.info, s)  # the sizes fit.py estimates memory for
        threads = s.n_threads or default_threads()
        # One KV stream per sequence (not llama.cpp's unified cache): a sequence's attention
        # then never sums over cells of another, so its text does not depend on its neighbours.
        cparams.n_ctx = n_ctx * self.sequences
        cparams.n_seq_max = self.sequences
        cparams.kv_unified = False
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.type_k = cparams.type_v = kv_type
        # llama.cpp refuses a quantized V cache without flash attention, so a quantized KV
        # cache turns it on rather than failing the load.
        flash = s.flash_attn or kv_type != llama_cpp.GGML_TYPE_F16
        cparams.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        cparams.no_perf = True
        # Chat needs logits for one position per batch; without this cap llama.cpp reserves an
        # n_batch × vocabulary output buffer (512 MiB for a 262k vocabulary).
        cparams.n_outputs_max = self.sequences
        self._model, self._ctx = open_llama(self.path, mparams, cparams)

    def close(self) -> None:
        with self._open_lock:
            close_llama(self._model, self._ctx)
            self._model = self._ctx = None
        if self.formatter is not None:
            self.formatter.close()  # stops its template sandbox process

    # -- tokens --------------------------------------------------------------------------------
    def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        """`ModelUnloaded` once the model is closed."""
        with self._open_lock:
            if self._model is None:
                raise ModelUnloaded(self.path)
            return tokenize(self._vocab, text, add_special=add_special,
                            parse_special=parse_special)

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        with self._open_lock:
            if self._model is None:
                raise ModelUnloaded(self.path)
            text = llama_cpp.llama_vocab_get_text(self._vocab, token)
        return text.decode("utf-8", errors="replace") if text else ""

    def prompt_tokens(self, prompt: RenderedPrompt) -> list[int]:
        # A template writes its own BOS and control tokens; the messages' text, and a plain
        # transcript (which gets the model's BOS), never becomes control tokens.
        return self._prompt_tokenizer(prompt)

    def render(
        self, messages: Sequence[ChatMessage], cancelled: Callable[[], bool] | None = None,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> tuple[RenderedPrompt, list[int]]:
        """The prompt and its tokens; `PromptFormatError` (`PromptCancelled` on ``cancelled``)
        when the template fails. ``tools``: OpenAI function tools offered to the model."""
        assert self.formatter is not None
        prompt = self.formatter.render(messages, cancelled, tools=tools)
        return prompt, self.prompt_tokens(prompt)


_KV_TYPES = {
    "f16": llama_cpp.GGML_TYPE_F16,
    "q8_0": llama_cpp.GGML_TYPE_Q8_0,
    "q4_0": llama_cpp.GGML_TYPE_Q4_0,
}


def token_piece(vocab: Any, token: int, buf: Any, special: bool = False) -> bytes:
    """A token's bytes as the model writes it (``buf``: a reused 256-byte buffer);
    ``special``: control tokens too, as their text."""
    n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, special)
    if n < 0:
        big = ctypes.create_string_buffer(-n)
        n = llama_cpp.llama_token_to_piece(vocab, token, big, -n, 0, special)
        return big.raw[:n]
    return buf.raw[:n]


def model_params(s: LoadSettings, progress: Callable[[float], bool] | None) -> tuple[Any, Any]:
    """llama.cpp model parameters for ``s``, and the progress callback object, which the caller
    keeps alive for the whole load (``progress`` returning False aborts it)."""
    mparams = llama_cpp.llama_model_default_params()
    mparams.n_gpu_layers = s.n_gpu_layers
    mparams.load_mode = _load_mode(s.use_mmap, s.use_mlock)
    callback = None
    if progress is not None:
        callback = llama_cpp.llama_progress_callback(
            lambda fraction, _user: bool(progress(float(fraction))))
        mparams.progress_callback = callback
    return mparams, callback


def _load_mode(mmap: bool, mlock: bool) -> int:
    if mmap and mlock:
        return llama_cpp.LLAMA_LOAD_MODE_MMAP_MLOCK
    if mlock:
        return llama_cpp.LLAMA_LOAD_MODE_MLOCK
    return llama_cpp.LLAMA_LOAD_MODE_MMAP if mmap else llama_cpp.LLAMA_LOAD_MODE_NONE


def tokenize(vocab: object, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
    """``text`` as tokens of ``vocab``; the buffer grows once if llama.cpp says it is short."""
    data = text.encode("utf-8")
    room = len(data) + 16
    for _ in range(2):
        buf = (llama_cpp.llama_token * room)()
        n = llama_cpp.llama_tokenize(vocab, data, len(data), buf, room, add_special,
                                     parse_special)
        if n >= 0:
            return list(buf[:n])
        room = -n
    raise GenerationError("llama.cpp could not tokenize the text")


def open_llama(path: str, mparams: Any, cparams: Any) -> tuple[Any, Any]:
    """Load the model at ``path`` and create its context: ``(model, ctx)``.

    Raises `LoadError` with llama.cpp's reason; nothing stays allocated when it does.
    """
    llama_log.take_recent_errors()
    model = llama_cpp.llama_model_load_from_file(path.encode(), mparams)
    if not model:
        raise LoadError(explain_failure("load the model", path))
    try:
        ctx = llama_cpp.llama_init_from_model(model, cparams)
        if not ctx:
            action = f"create a context of {cparams.n_ctx} tokens for"
            raise LoadError(explain_failure(action, path))
    except BaseException:
        llama_cpp.llama_model_free(model)
        raise
    return model, ctx


def close_llama(model: Any, ctx: Any) -> None:
    """Free what `open_llama` returned (either may be None: already freed)."""
    if ctx:
        llama_cpp.llama_free(ctx)
    if model:
        llama_cpp.llama_model_free(model)


def decode_one(ctx: Any, token: int, path: str, buf: Any = None) -> None:
    """Decode a single token at the next position; `GenerationError` if llama.cpp fails.

    ``buf`` (a one-token ``llama_token`` array) saves an allocation in a hot loop.
    """
    if buf is None:
        buf = (llama_cpp.llama_token * 1)()
    buf[0] = token
    rc = llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(buf, 1))
    if rc != 0:
        raise GenerationError(explain_failure(f"decode (code {rc})", path))
