"""llama.cpp's own `llama-server`, the benchmarks' baseline: build it once, start it, stop it.
(`ensure_built("llama-embedding")` builds llama.cpp's embedding example the same way.)

The binary is built from the llama.cpp vendored in llama-cpp-python's sdist of the installed
version, with the options llama-cpp-python's own build uses (Release, shared libraries, native
CPU flags, OpenMP, no curl), so that the two differ only in what sits above llama.cpp. It is
cached in `~/.cache/hearth-bench/llama-server-<version>/` (`HEARTH_BENCH_CACHE` moves the root).

`python bench/_llama_server.py [TARGET]` builds it (about 5–10 minutes on two cores) and prints
its path.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

VERSION = importlib.metadata.version("llama-cpp-python")
CACHE = (Path(os.environ.get("HEARTH_BENCH_CACHE", Path.home() / ".cache" / "hearth-bench"))
         / f"llama-server-{VERSION}")
BUILD_JOBS = os.environ.get("HEARTH_BENCH_BUILD_JOBS", "2")

# llama-cpp-python's CMakeLists forces these on llama.cpp; the rest are llama.cpp's defaults,
# which llama-cpp-python keeps (GGML_NATIVE on, OpenMP on). The web UI is neither built nor
# fetched: the prebuilt one would come from the network. Examples are configured (llama-embedding
# is one) but, like every tool, only built when a bench asks for its target.
CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=ON",
    "-DGGML_NATIVE=ON",
    "-DGGML_OPENMP=ON",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_COMMON=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=ON",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
)


def binary_path(tool: str = "llama-server") -> Path:
    return CACHE / "build" / "bin" / tool


def _stamp(tool: str = "llama-server") -> Path:
    # Written last: a build killed halfway leaves no stamp and is redone, never used.
    return CACHE / ("built" if tool == "llama-server" else f"built-{tool}")


def _run(cmd: list[str], log: Path, cwd: Path | None = None) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        code = subprocess.call(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        raise RuntimeError(f"{cmd[0]} failed ({code}); see {log}")


def _vendored_source(log: Path) -> Path:
    """Unpack llama-cpp-python's sdist (from pip's cache when it is there) once."""
    source = CACHE / "src"
    vendored = source / f"llama_cpp_python-{VERSION}" / "vendor" / "llama.cpp"
    if vendored.is_dir():
        return vendored
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        _run([sys.executable, "-m", "pip", "download", f"llama-cpp-python=={VERSION}",
              "--no-deps", "--no-binary", ":all:", "-d", tmp], log)
        sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        unpacked = Path(tmp) / "src"
        with tarfile.open(sdist) as tar:
            tar.extractall(unpacked, filter="data")
        shutil.rmtree(source, ignore_errors=True)
        unpacked.rename(source)
    return vendored


def ensure_built(tool: str = "llama-server") -> Path:
    """The ``tool`` binary (a llama.cpp CMake target: llama-server, llama-embedding), building
    it first if this version has none in the cache."""
    if _stamp(tool).exists() and binary_path(tool).exists():
        return binary_path(tool)
    CACHE.mkdir(parents=True, exist_ok=True)
    log = CACHE / "build.log"
    with (CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second bench waits for the first one's build
        if _stamp(tool).exists() and binary_path(tool).exists():
            return binary_path(tool)
        print(f"building {tool} {VERSION} in {CACHE} (log: {log}) ...", flush=True)
        vendored = _vendored_source(log)
        build = CACHE / "build"
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        _run(["cmake", "-S", str(vendored), "-B", str(build), *generator, *CMAKE_OPTIONS], log)
        _run(["cmake", "--build", str(build), "--target", tool, "-j", BUILD_JOBS], log)
        if not binary_path(tool).exists():
            raise RuntimeError(f"the build made no {binary_path(tool)}; see {log}")
        _stamp(tool).write_text(f"{VERSION}\n")
    return binary_path(tool)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Hearth's format for a model without a chat template (the starter): "User: …\nAssistant:"
# (app.engine.inference.prompt_format), so that both servers are given the same prompt text.
PLAIN_TEMPLATE = (
    "{%- for m in messages -%}"
    "{{ {'system': 'System', 'user': 'User', 'assistant': 'Assistant'}[m.role] }}: "
    "{{ m.content | trim }}\n"
    "{%- endfor -%}"
    "Assistant:"
)


@dataclass
class ServerProcess:
    """A server started as a child process; `base_url` answers once /health says ok."""

    name: str
    process: subprocess.Popen
    base_url: str
    log: Path
    # When /health's answer means the model is in memory (Hearth answers before it loads).
    ready: Callable[[dict], bool] = lambda health: True

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n"
                                   f"{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                reply = httpx.get(f"{self.base_url}/health", timeout=2)
                if reply.status_code == 200 and self.ready(reply.json()):
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n"
                           f"{self.log.read_text()[-3000:]}")

    def model_id(self) -> str:
        """The first model the server lists (llama-server ignores the name; Hearth needs it)."""
        reply = httpx.get(f"{self.base_url}/v1/models", timeout=10)
        reply.raise_for_status()
        return reply.json()["data"][0]["id"]

    def cpu_seconds(self) -> float:
        import psutil

        with contextlib.suppress(psutil.Error):
            times = psutil.Process(self.process.pid).cpu_times()
            return times.user + times.system
        return 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # both servers shut down cleanly on Ctrl+C
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_process(name: str, cmd: list[str], port: int, env: dict | None = None,
                  cwd: Path | None = None,
                  ready: Callable[[dict], bool] = lambda health: True) -> ServerProcess:
    log = Path(tempfile.mkstemp(prefix=f"hearth-bench-{name}-", suffix=".log")[1])
    with log.open("w") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    server = ServerProcess(name, process, f"http://127.0.0.1:{port}", log, ready)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def start_llama_server(model: Path, threads: int, ctx_per_slot: int, parallel: int,
                       flash_attn: bool) -> ServerProcess:
    """llama-server on 127.0.0.1 and a free port, `parallel` slots of `ctx_per_slot` tokens
    each (llama-server splits -c between its slots), Hearth's plain prompt format."""
    port = free_port()
    cmd = [str(ensure_built()), "-m", str(model), "-t", str(threads), "-tb", str(threads),
           "-c", str(ctx_per_slot * parallel), "--parallel", str(parallel),
           "-fa", "on" if flash_attn else "off", "--host", "127.0.0.1", "--port", str(port),
           "--jinja", "--chat-template", PLAIN_TEMPLATE, "--no-webui"]
    return start_process(f"llama-server-np{parallel}", cmd, port)


def exit_on_sigterm() -> None:
    """Turn SIGTERM (`timeout`, a closed terminal) into SystemExit, so that `running` blocks
    still stop their servers instead of leaving them behind."""
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(143))


def machine_load() -> str:
    """The load average against the cores: a busy machine makes every rate here noise."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} logical cores"


@contextlib.contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    try:
        yield server
    finally:
        server.stop()


@dataclass
class StreamResult:
    """One streamed chat completion as the client saw it."""

    tokens: int = 0  # usage.completion_tokens, else the number of content chunks
    chunks: int = 0
    t_first: float = 0.0  # perf_counter at the first and last content chunk
    t_last: float = 0.0
    finish_reason: str | None = None
    text: str = ""
    error: str = ""
    server_rate: float | None = None  # llama-server's own timings.predicted_per_second

    @property
    def rate(self) -> float:
        """Tokens per second from the first content chunk to the last."""
        span = self.t_last - self.t_first
        return (self.tokens - 1) / span if self.tokens > 1 and span > 0 else 0.0

    def cut(self, max_tokens: int) -> str:
        """Why this stream did not end properly ('' when it reached max_tokens or a stop)."""
        if self.error:
            return self.error
        if self.finish_reason == "length" and self.tokens >= max_tokens:
            return ""
        if self.finish_reason == "stop" and self.tokens > 0:
            return ""
        return f"finish_reason {self.finish_reason!r} after {self.tokens} tokens"


def chat_body(model: str, prompt: str, sampling: dict, seed: int, max_tokens: int,
              stop: list[str]) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True,
            "stream_options": {"include_usage": True}, "max_tokens": max_tokens, "seed": seed,
            "stop": stop, **sampling}


async def stream_chat(client: httpx.AsyncClient, base_url: str, body: dict) -> StreamResult:
    result = StreamResult()
    try:
        async with client.stream("POST", f"{base_url}/v1/chat/completions", json=body,
                                 timeout=httpx.Timeout(300, connect=10)) as reply:
            if reply.status_code != 200:
                result.error = f"HTTP {reply.status_code}: {(await reply.aread())[:300]!r}"
                return result
            async for line in reply.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                for choice in chunk.get("choices") or []:
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        now = time.perf_counter()
                        result.t_first = result.t_first or now
                        result.t_last = now
                        result.chunks += 1
                        result.text += content
                    if choice.get("finish_reason"):
                        result.finish_reason = choice["finish_reason"]
                if chunk.get("usage"):
                    result.tokens = chunk["usage"].get("completion_tokens", 0)
                if chunk.get("timings"):
                    result.server_rate = chunk["timings"].get("predicted_per_second")
    except httpx.HTTPError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    result.tokens = result.tokens or result.chunks
    return result


async def _stream_all(base_url: str, bodies: list[dict]) -> list[StreamResult]:
    limits = httpx.Limits(max_connections=len(bodies) + 1)
    async with httpx.AsyncClient(limits=limits) as client:
        return list(await asyncio.gather(*(stream_chat(client, base_url, b) for b in bodies)))


def stream_concurrently(base_url: str, bodies: list[dict]) -> list[StreamResult]:
    """Send every request at once, each on its own connection; results in request order."""
    return asyncio.run(_stream_all(base_url, bodies))


if __name__ == "__main__":
    print(ensure_built(*sys.argv[1:2]))  # a target name, llama-server by default
