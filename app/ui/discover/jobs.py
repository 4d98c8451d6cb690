"""The Discover page's background jobs: plain functions run on its TaskRunner, never on the GUI
thread, because each one talks to the Hub (and reads the token, which may mean the keyring).

`fetch_details` is a generator: it yields between its stages (token, file list, each file's
header, model card), so `quit()` on its worker stops a job the user has moved away from at the
next stage instead of letting it fetch every header and the README for nothing."""

from __future__ import annotations

import logging
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor, as_completed

import psutil

from app.engine.hub.api import (
    FileTarget,
    HubError,
    HubFile,
    file_targets,
    list_gguf_files,
    model_card,
    remote_model_info,
)
from app.engine.hub.hf_token import get_token
from app.engine.sizing.fit_verdict import FitBadge, estimated_fit, quick_fit
from app.engine.sizing.hardware import GpuInfo
from app.ui.discover.details import RepoDetails
from app.ui.load_settings_dialog import known_gpus

log = logging.getLogger(__name__)
HEADER_WORKERS = 4  # header fetches at once for one repository


def machine_memory() -> tuple[int, list[GpuInfo]]:
    """Free RAM now and the GPUs of the Hardware page's last probe: cheap, unlike a full
    `probe_hardware()` (NVML init and llama.cpp's system info) on every repository opened."""
    return int(psutil.virtual_memory().available), known_gpus()


def fetch_details(repo_id: str) -> Generator[None, None, RepoDetails]:
    """Files with fit badges and the model card of ``repo_id`` (runs off the GUI thread)."""
    token = get_token()
    yield
    files = list_gguf_files(repo_id, token=token)
    yield
    ram_available, gpus = machine_memory()
    badges = yield from fit_badges(repo_id, files, ram_available, gpus, token)
    details = RepoDetails(repo_id, files, badges)
    try:
        details.card = model_card(repo_id, token=token)
    except HubError as exc:  # the files are still worth showing without the card
        details.card_error = f"The model card could not be loaded: {exc}"
    return details


def fit_badges(repo_id: str, files: list[HubFile], ram_available: int, gpus: list[GpuInfo],
               token: str | None) -> Generator[None, None, dict[str, FitBadge]]:
    """A badge per file: the memory estimate from the file's header fetched from the Hub (the
    first part's, for a split file), or the size rule when the header cannot be had. Projectors
    get the size rule: they are loaded beside a model, not on their own. Yields after each
    file; closing the generator drops the header fetches not yet started."""

    def badge(hub_file: HubFile) -> FitBadge:
        if hub_file.kind == "model":
            try:
                info, shape = remote_model_info(repo_id, hub_file.name, hub_file.size, token)
                return estimated_fit(info, shape, ram_available, gpus)
            except HubError as exc:
                log.info("No header for %s/%s (%s); using the size rule", repo_id,
                         hub_file.name, exc.kind)
        return quick_fit(hub_file.size, ram_available, gpus)

    if not files:
        return {}
    badges: dict[str, FitBadge] = {}
    pool = ThreadPoolExecutor(max_workers=min(HEADER_WORKERS, len(files)))
    try:
        futures = {pool.submit(badge, f): f.name for f in files}
        for future in as_completed(futures):
            badges[futures[future]] = future.result()
            yield
    finally:
        # Waits only for the fetches already running (at most HEADER_WORKERS).
        pool.shutdown(wait=True, cancel_futures=True)
    return {f.name: badges[f.name] for f in files}


def fetch_targets(repo_id: str, names: list[str]) -> tuple[list[FileTarget], str | None]:
    token = get_token()
    return file_targets(repo_id, names, token=token), token


def user_message(exc: BaseException) -> str:
    if isinstance(exc, HubError):
        return str(exc)
    return f"Something went wrong talking to the Hub ({type(exc).__name__}); see the log file."
