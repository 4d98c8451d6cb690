"""The Discover page's background jobs: plain functions run on its TaskRunner, never on the GUI
thread, because each one talks to the Hub (and reads the token, which may mean the keyring).

`fetch_details` is a generator: it yields between its stages (token, file list, each file's
header, model card), handing the page what each stage found, and `quit()` on its worker stops a
job the user has moved away from at the next stage instead of letting it fetch every header and
the README for nothing."""

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
from app.engine.sizing.fit_verdict import estimated_fit, quick_fit
from app.engine.sizing.hardware import GpuInfo
from app.ui.discover.details import BadgeReady, CardReady, RepoDetails, repo_projector
from app.ui.load_settings_dialog import known_gpus

log = logging.getLogger(__name__)
DetailsUpdate = RepoDetails | BadgeReady | CardReady  # what `fetch_details` yields
HEADER_WORKERS = 4  # header fetches at once for one repository


def machine_memory() -> tuple[int, list[GpuInfo]]:
    """Free RAM now and the GPUs of the Hardware page's last probe: cheap, unlike a full
    `probe_hardware()` (NVML init and llama.cpp's system info) on every repository opened."""
    return int(psutil.virtual_memory().available), known_gpus()


def fetch_details(repo_id: str) -> Generator[DetailsUpdate | None, None, RepoDetails]:
    """Files with fit badges and the model card of ``repo_id`` (runs off the GUI thread).

    Yields the file list as soon as the Hub listed it (sizes from the listing, badges still
    missing), then each file's badge and the card as each arrives, so the page shows rows at
    once and fills in a badge when that file's own header probe is done, not after the slowest.
    Returns the complete details (for the page's cache)."""
    token = get_token()
    yield None
    files = list_gguf_files(repo_id, token=token)
    yield RepoDetails(repo_id, files, loading=True)
    ram_available, gpus = machine_memory()
    details = RepoDetails(repo_id, files)
    for update in probes(repo_id, files, ram_available, gpus, token):
        if isinstance(update, BadgeReady):
            details.badges[update.name] = update.badge
            if update.with_projector is not None:
                details.projector_badges[update.name] = update.with_projector
        else:
            details.card, details.card_error = update.card, update.error
        yield update
    details.badges = {f.name: details.badges[f.name] for f in files if f.name in details.badges}
    details.projector_badges = {f.name: details.projector_badges[f.name] for f in files
                                if f.name in details.projector_badges}
    return details


def probes(repo_id: str, files: list[HubFile], ram_available: int, gpus: list[GpuInfo],
           token: str | None) -> Generator[BadgeReady | CardReady, None, None]:
    """The model card and a badge per file, each yielded as soon as it is in. A badge is the
    memory estimate from the file's header fetched from the Hub (the first part's, for a split
    file), or the size rule when the header cannot be had. Projectors get the size rule: they
    are loaded beside a model, not on their own. A model file of a repository that ships a
    projector gets a second badge with the projector's size counted (from the listing, so the
    page switches between the two without asking the Hub again). Closing the generator drops
    the fetches not yet started."""
    projector = repo_projector(files)
    extra = projector.size if projector is not None else 0

    def badge(hub_file: HubFile) -> BadgeReady:
        paired = hub_file.kind == "model" and extra > 0
        if hub_file.kind == "model":
            try:
                info, shape = remote_model_info(repo_id, hub_file.name, hub_file.size, token)
                return BadgeReady(
                    hub_file.name, estimated_fit(info, shape, ram_available, gpus),
                    estimated_fit(info, shape, ram_available, gpus, extra) if paired else None)
            except HubError as exc:
                log.info("No header for %s/%s (%s); using the size rule", repo_id,
                         hub_file.name, exc.kind)
        return BadgeReady(
            hub_file.name, quick_fit(hub_file.size, ram_available, gpus),
            quick_fit(hub_file.size, ram_available, gpus, extra) if paired else None)

    def card() -> CardReady:
        try:
            return CardReady(model_card(repo_id, token=token))
        except HubError as exc:  # the files are still worth showing without the card
            return CardReady("", f"The model card could not be loaded: {exc}")

    # One worker more than the header fetches, so the card never queues behind them.
    pool = ThreadPoolExecutor(max_workers=HEADER_WORKERS + 1)
    try:
        futures = [pool.submit(card)] + [pool.submit(badge, f) for f in files]
        for future in as_completed(futures):
            yield future.result()
    finally:
        # Waits only for the fetches already running (at most HEADER_WORKERS + 1).
        pool.shutdown(wait=True, cancel_futures=True)


def fetch_targets(repo_id: str, names: list[str]) -> tuple[list[FileTarget], str | None]:
    token = get_token()
    return file_targets(repo_id, names, token=token), token


def user_message(exc: BaseException) -> str:
    if isinstance(exc, HubError):
        return str(exc)
    return f"Something went wrong talking to the Hub ({type(exc).__name__}); see the log file."
