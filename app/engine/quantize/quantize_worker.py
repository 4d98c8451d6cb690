"""The child process behind `WorkerProcess`: quantize, predict sizes, or measure quality.

Reads one JSON request on stdin and writes one JSON object per line on stdout: progress as it
goes, then a result, or ``{"error": "..."}``. It imports as little as it can before the work
starts, because its start-up time is part of every quantization's wall time.

llama.cpp reports quantization progress only through its log ("[  12/ 291] blk.3.ffn_up…"),
so the log callback is where progress comes from.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import json
import os
import re
import sys
import time
import types
from typing import Any


def _import_bindings() -> types.ModuleType:
    """llama_cpp with only its C bindings: the package's own __init__ also loads the high-level
    `Llama` class with numpy and jinja2, 70 ms this process never uses on its way to quantizing.
    The stand-in package carries every binding, so later `import llama_cpp` lines see them."""
    if "llama_cpp" in sys.modules:
        return sys.modules["llama_cpp"]
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("llama-cpp-python is not installed")
    package = types.ModuleType("llama_cpp")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules["llama_cpp"] = package
    bindings = importlib.import_module("llama_cpp.llama_cpp")
    package.__dict__.update({k: v for k, v in vars(bindings).items() if not k.startswith("__")})
    return package


llama_cpp = _import_bindings()

_TENSOR_LINE = re.compile(
    r"^\[\s*(\d+)/\s*(\d+)\]\s+(\S+)\s+-\s+\[([\d,\s]+)\],\s+type\s*=\s*(\w+)(.*)$"
)
_DRY_TARGET = re.compile(r"->\s*[\d.]+\s*\w+\s*\((\w+)\)")
_CONVERT_TARGET = re.compile(r"converting to (\w+)")
_GGUF_ALIGNMENT = 32


_unfinished: str | None = None  # the .part file being written, removed if Hearth goes away


def _send(message: dict[str, Any]) -> None:
    try:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError, OSError):
        # Hearth was killed: nobody will rename or clean up the output, so stop now and leave
        # nothing behind. os._exit, because this runs inside llama.cpp's log callback.
        if _unfinished:
            try:
                os.unlink(_unfinished)
            except OSError:
                pass
        os._exit(3)


class _LogWatcher:
    """Turns llama.cpp's log into progress messages and keeps error lines and tensor lines."""

    def __init__(self, report_progress: bool) -> None:
        # Imported here, after _import_bindings: llama_log's `import llama_cpp` gets the stand-in.
        from app.engine.inference.llama_log import ERROR, LineCollector

        self._error_level = ERROR
        self.report_progress = report_progress
        self.errors: list[str] = []
        self.tensors: list[tuple[str, list[int], str, str]] = []  # name, shape, from, to
        self._lines = LineCollector(self._line)
        # Kept on the instance: a collected ctypes callback crashes the process when called.
        self.callback = llama_cpp.llama_log_callback(
            lambda level, text, _user: self._lines.feed(level, text))
        llama_cpp.llama_log_set(self.callback, ctypes.c_void_p(0))

    def flush(self) -> None:
        self._lines.flush()

    def _line(self, level: int, line: str) -> None:
        line = line.strip()
        if level == self._error_level:
            self.errors.append(line)
        match = _TENSOR_LINE.match(line)
        if match is None:
            return
        index, total, name, shape, src_type, rest = match.groups()
        target = _DRY_TARGET.search(rest) or _CONVERT_TARGET.search(rest)
        dims = [int(d) for d in shape.replace(" ", "").split(",") if d]
        self.tensors.append((name, dims, src_type, target.group(1) if target else src_type))
        if self.report_progress:
            _send({"tensor": int(index), "of": int(total), "name": name})


def _imatrix(request: dict[str, Any], keepalive: list[Any]) -> Any:
    """The request's importance matrix as the C array llama.cpp reads, or None without one.
    ``keepalive`` holds the buffers behind it until quantizing is over."""
    if not request.get("imatrix"):
        return None
    from app.engine.quantize.imatrix import load_imatrix, to_c_array

    array, buffers = to_c_array(load_imatrix(request["imatrix"]))
    keepalive += [array, buffers]
    return ctypes.cast(array, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))


def _params(request: dict[str, Any], ftype: str, imatrix: Any) -> Any:
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, ftype)
    params.nthread = int(request.get("threads") or 0)
    params.allow_requantize = bool(request.get("allow_requantize"))
    if imatrix is not None:
        params.imatrix = imatrix
    return params


def _failure(watcher: _LogWatcher, what: str) -> str:
    watcher.flush()
    detail = "; ".join(line for line in watcher.errors if line)[-400:]
    return f"llama.cpp could not {what}" + (f": {detail}" if detail else ".")


def _quantize(request: dict[str, Any]) -> None:
    global _unfinished
    _unfinished = request["dest"]
    watcher = _LogWatcher(report_progress=True)
    keepalive: list[Any] = []
    params = _params(request, request["ftype"], _imatrix(request, keepalive))
    started = time.perf_counter()
    rc = llama_cpp.llama_model_quantize(
        request["source"].encode(), request["dest"].encode(), ctypes.byref(params)
    )
    if rc != 0:
        _send({"error": _failure(watcher, f"quantize to {request['type']}")})
        return
    _send({"done": True, "seconds": time.perf_counter() - started})
    # Nothing is left to clean up that the OS does not, and the interpreter's own teardown
    # (freeing llama.cpp's state, unmapping the source) would add to every quantization's time.
    os._exit(0)


def _tensor_bytes(dims: list[int], type_name: str) -> int:
    import gguf

    block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[type_name.upper()]]
    count = 1
    for d in dims:
        count *= d
    raw = count // block * type_size
    return raw + (-raw) % _GGUF_ALIGNMENT


def _dry_run(request: dict[str, Any]) -> None:
    """Exact output sizes: llama.cpp's dry run names each tensor's new type, and the bytes of
    every type follow from the shape. The header (metadata) is the source's own."""
    source_bytes = int(request["source_size"])
    keepalive: list[Any] = []
    # The imatrix C array is the same for every target: built once, shared by all of them.
    imatrix = _imatrix(request, keepalive) if request["targets"] else None
    for item in request["targets"]:
        watcher = _LogWatcher(report_progress=False)
        params = _params(request, item["ftype"], imatrix)
        params.dry_run = True
        rc = llama_cpp.llama_model_quantize(
            request["source"].encode(), b"", ctypes.byref(params)
        )
        watcher.flush()
        if rc != 0 or not watcher.tensors:
            _send({"type": item["type"], "failed": _failure(watcher, f"plan {item['type']}")})
            continue
        old = sum(_tensor_bytes(dims, src) for _n, dims, src, _t in watcher.tensors)
        new = sum(_tensor_bytes(dims, dst) for _n, dims, _s, dst in watcher.tensors)
        _send({"type": item["type"], "size": source_bytes - old + new})


def _evaluate(request: dict[str, Any]) -> None:
    from app.engine.quantize import perplexity as ppl
    from app.engine.quantize.samples import DEFAULT_SAMPLE, sample_text

    text = sample_text(request.get("sample") or DEFAULT_SAMPLE)
    # A CPU-only llama.cpp build ignores the offload request; say what really happened.
    gpu_layers = int(request.get("gpu_layers") or 0)
    if not llama_cpp.llama_supports_gpu_offload():
        gpu_layers = 0
    with ppl.EvalModel(request["model"], n_ctx=int(request["n_ctx"]), n_gpu_layers=gpu_layers,
                       n_threads=request.get("threads") or None) as model:
        def progress(done: int, total: int) -> None:
            _send({"stage": "perplexity", "step": done, "of": total})

        result = ppl.perplexity(model, text, max_chunks=request.get("max_chunks"),
                                progress=progress)
        _send({"stage": "speed", "step": 0, "of": 1})
        # llama-bench's pp/tg shape, shrunk to fit small contexts. Best of three: other programs
        # can only slow a run down, so the fastest is the closest to what the model can do.
        n_gen = 32
        n_prompt = min(256, model.n_ctx - n_gen)
        prompt = ppl.speed_prompt(model, n_prompt)  # tokenized once for the three runs
        runs = [ppl.measure_speed(model, n_prompt=n_prompt, n_gen=n_gen, prompt=prompt)
                for _ in range(3)]
        prompt_tps = max(r.prompt_tps for r in runs)
        gen_tps = max(r.gen_tps for r in runs)
    _send({"result": {
        "perplexity": result.perplexity, "stderr": result.stderr, "n_ctx": result.n_ctx,
        "n_chunks": result.n_chunks, "prompt_tps": prompt_tps, "gen_tps": gen_tps,
        "gpu_layers": gpu_layers,
    }})


_COMMANDS = {"quantize": _quantize, "dry_run": _dry_run, "evaluate": _evaluate}


def main() -> int:
    request = json.loads(sys.stdin.read())
    try:
        _COMMANDS[request["cmd"]](request)
    except Exception as exc:  # reported to the parent as one readable line
        _send({"error": f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
