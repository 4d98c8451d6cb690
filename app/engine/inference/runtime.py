"""A loaded model and its context, driven through llama.cpp's C API.

The decode loop samples with llama.cpp's own sampler chain straight from the context, so no
logits row is copied into Python per token (llama-cpp-python's high-level `Llama` copies the whole
vocabulary row each step, which costs ~10% on a 262k-token vocabulary).

One `Runtime` belongs to one thread: the engine host's inference thread.
"""

from __future__ import annotations

import ctypes
import os
import time
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
from app.engine.inference.sampler_chain import make_chain
from app.engine.inference.stop_text import StopTextStream
from app.engine.sizing.memory_estimate import effective_ctx
from app.engine.types import ChatMessage, GenerationStats, LoadSettings, ModelInfo, Sampling

__all__ = ["GenerationError", "LoadError", "Runtime", "explain_failure"]


class LoadError(RuntimeError):
    """The model could not be loaded; the message is meant for the user."""


class GenerationError(RuntimeError):
    """llama.cpp failed while decoding; the message is meant for the user."""


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
        own KV cache (the serving pool's decode loop drives those; `generate` uses sequence 0)."""
        llama_log.install()
        self.path = str(path)
        self.settings = settings
        self.sequences = max(1, sequences)
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
            self._memory = llama_cpp.llama_get_memory(self._ctx)
            self._cached: list[int] = []  # tokens whose K/V are in the context, in order
            self._piece_buf = ctypes.create_string_buffer(256)
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
        close_llama(self._model, self._ctx)
        self._model = self._ctx = None
        if self.formatter is not None:
            self.formatter.close()  # stops its template sandbox process

    # -- tokens --------------------------------------------------------------------------------
    def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        return tokenize(self._vocab, text, add_special=add_special, parse_special=parse_special)

    def _piece(self, token: int) -> bytes:
        return token_piece(self._vocab, token, self._piece_buf)

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        text = llama_cpp.llama_vocab_get_text(self._vocab, token)
        return text.decode("utf-8", errors="replace") if text else ""

    def prompt_tokens(self, prompt: RenderedPrompt) -> list[int]:
        # A template writes its own BOS and control tokens; the messages' text, and a plain
        # transcript (which gets the model's BOS), never becomes control tokens.
        return self._prompt_tokenizer(prompt)

    def render(
        self, messages: Sequence[ChatMessage], cancelled: Callable[[], bool] | None = None
    ) -> tuple[RenderedPrompt, list[int]]:
        """The prompt and its tokens; `PromptFormatError` (`PromptCancelled` on ``cancelled``)
        when the template fails."""
        assert self.formatter is not None
        prompt = self.formatter.render(messages, cancelled)
        return prompt, self.prompt_tokens(prompt)

    # -- decoding ------------------------------------------------------------------------------
    def _decode(
        self, tokens: Sequence[int], cancelled: Callable[[], bool] | None = None
    ) -> bool:
        """Decode ``tokens`` in n_batch chunks; False if ``cancelled`` stopped it between two.

        ``_cached`` always lists exactly the tokens decoded so far, so a cancelled prompt's
        finished chunks are reused by the next request.
        """
        n_batch = llama_cpp.llama_n_batch(self._ctx)
        for start in range(0, len(tokens), n_batch):
            if cancelled is not None and cancelled():
                return False
            chunk = tokens[start:start + n_batch]
            arr = (llama_cpp.llama_token * len(chunk))(*chunk)
            rc = llama_cpp.llama_decode(self._ctx, llama_cpp.llama_batch_get_one(arr, len(chunk)))
            if rc != 0:
                self.reset_cache()
                raise GenerationError(explain_failure(f"decode (code {rc})", self.path))
            self._cached.extend(chunk)
        return True

    def reset_cache(self) -> None:
        llama_cpp.llama_memory_clear(self._memory, True)
        self._cached = []

    def _reuse_prefix(self, tokens: Sequence[int]) -> int:
        """Keep the K/V of the longest shared prefix; return how many prompt tokens it covers."""
        keep = 0
        for a, b in zip(self._cached, tokens, strict=False):
            if a != b:
                break
            keep += 1
        keep = min(keep, len(tokens) - 1)  # the last prompt token is decoded again for logits
        if keep < len(self._cached):
            if not llama_cpp.llama_memory_seq_rm(self._memory, 0, keep, -1):
                self.reset_cache()
                return 0
            del self._cached[keep:]
        return keep

    @property
    def cached_tokens(self) -> int:
        return len(self._cached)

    def generate(
        self,
        tokens: Sequence[int],
        sampling: Sampling,
        stop: Sequence[str],
        on_text: Callable[[str], None],
        cancelled: Callable[[], bool],
    ) -> tuple[str, GenerationStats]:
        """Decode the prompt (reusing the cached prefix) and stream a reply through `on_text`."""
        t0 = time.perf_counter()
        stats = GenerationStats(prompt_tokens=len(tokens), n_ctx=self.n_ctx)
        reused = self._reuse_prefix(tokens)
        stats.cached_tokens = reused
        if not self._decode(tokens[reused:], cancelled):
            stats.stop_reason = "cancelled"
            stats.total_seconds = time.perf_counter() - t0
            stats.context_used = len(self._cached)
            return "", stats
        text_stream = StopTextStream(list(stop) + list(sampling.stop))
        sampler = make_chain(sampling, llama_cpp.llama_vocab_n_tokens(self._vocab))
        vocab, ctx = self._vocab, self._ctx
        t_first = t0
        generated = 0
        reason = "length"
        one = (llama_cpp.llama_token * 1)()
        try:
            while generated < sampling.max_tokens:
                if cancelled():
                    reason = "cancelled"
                    break
                token = llama_cpp.llama_sampler_sample(sampler, ctx, -1)
                generated += 1
                if generated == 1:
                    t_first = time.perf_counter()
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    reason = "eos"
                    break
                shown = text_stream.feed(self._piece(token))
                if shown:
                    on_text(shown)
                if text_stream.stopped:
                    reason = "stop"
                    break
                if len(self._cached) >= self.n_ctx:
                    reason = "context"
                    break
                try:
                    decode_one(ctx, token, self.path, one)
                except GenerationError:
                    self.reset_cache()
                    raise
                self._cached.append(token)
        finally:
            llama_cpp.llama_sampler_free(sampler)
        tail = text_stream.flush()
        if tail:
            on_text(tail)
        t_end = time.perf_counter()
        stats.generated_tokens = generated
        stats.time_to_first_token = t_first - t0
        stats.total_seconds = t_end - t0
        if generated > 1 and t_end > t_first:
            stats.tokens_per_second = (generated - 1) / (t_end - t_first)
        stats.stop_reason = reason  # type: ignore[assignment]
        stats.context_used = len(self._cached)
        return text_stream.text, stats


_KV_TYPES = {
    "f16": llama_cpp.GGML_TYPE_F16,
    "q8_0": llama_cpp.GGML_TYPE_Q8_0,
    "q4_0": llama_cpp.GGML_TYPE_Q4_0,
}


def token_piece(vocab: Any, token: int, buf: Any) -> bytes:
    """A token's bytes as the model writes it (``buf``: a reused 256-byte buffer)."""
    n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
    if n < 0:
        big = ctypes.create_string_buffer(-n)
        n = llama_cpp.llama_token_to_piece(vocab, token, big, -n, 0, False)
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
