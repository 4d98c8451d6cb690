"""The Discover page's background jobs: plain functions run on its TaskRunner, never on the GUI
thread, because each one talks to the Hub (and reads the token, which may mean the keyring)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from app.engine.hardware import HardwareSnapshot, probe_hardware
from app.engine.hub import (
    FileTarget,
    HubError,
    HubFile,
    file_targets,
    list_gguf_files,
    model_card,
    remote_model_info,
)
from app.engine.hub_token import get_token
from app.ui.discover.details import RepoDetails
from app.ui.discover.fit_badge import FitBadge, estimated_fit, quick_fit

log = logging.getLogger(__name__)
HEADER_WORKERS = 4  # header fetches at once for one repository


def fetch_details(repo_id: str) -> RepoDetails:
    """Files with fit badges and the model card of ``repo_id`` (runs off the GUI thread)."""
    token = get_token()
    files = list_gguf_files(repo_id, token=token)
    snapshot = probe_hardware()
    badges = fit_badges(repo_id, files, snapshot, token)
    details = RepoDetails(repo_id, files, badges)
    try:
        details.card = model_card(repo_id, token=token)
    except HubError as exc:  # the files are still worth showing without the card
        details.card_error = f"The model card could not be loaded: {exc}"
    return details


def fit_badges(repo_id: str, files: list[HubFile], snapshot: HardwareSnapshot,
               token: str | None) -> dict[str, FitBadge]:
    """A badge per file: the memory estimate from the file's header fetched from the Hub (the
    first part's, for a split file), or the size rule when the header cannot be had. Projectors
    get the size rule: they are loaded beside a model, not on their own."""

    def badge(hub_file: HubFile) -> FitBadge:
        if hub_file.kind == "model":
            try:
                info, shape = remote_model_info(repo_id, hub_file.name, hub_file.size, token)
                return estimated_fit(info, shape, snapshot.ram_available, snapshot.gpus)
            except HubError as exc:
                log.info("No header for %s/%s (%s); using the size rule", repo_id,
                         hub_file.name, exc.kind)
        return quick_fit(hub_file.size, snapshot.ram_available, snapshot.gpus)

    if not files:
        return {}
    with ThreadPoolExecutor(max_workers=min(HEADER_WORKERS, len(files))) as pool:
        return dict(zip([f.name for f in files], pool.map(badge, files), strict=True))


def fetch_targets(repo_id: str, names: list[str]) -> tuple[list[FileTarget], str | None]:
    token = get_token()
    return file_targets(repo_id, names, token=token), token


def user_message(exc: BaseException) -> str:
    if isinstance(exc, HubError):
        return str(exc)
    return f"Something went wrong talking to the Hub ({type(exc).__name__}); see the log file."
