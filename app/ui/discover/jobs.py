"""The Discover page's background jobs: plain functions run on its TaskRunner, never on the GUI
thread, because each one talks to the Hub (and reads the token, which may mean the keyring)."""

from __future__ import annotations

from app.engine.hardware import probe_hardware
from app.engine.hub import FileTarget, HubError, file_targets, list_gguf_files, model_card
from app.engine.hub_token import get_token
from app.ui.discover.details import RepoDetails
from app.ui.discover.fit_badge import quick_fit


def fetch_details(repo_id: str) -> RepoDetails:
    """Files with fit badges and the model card of ``repo_id`` (runs off the GUI thread)."""
    token = get_token()
    files = list_gguf_files(repo_id, token=token)
    snapshot = probe_hardware()
    badges = {f.name: quick_fit(f.size, snapshot.ram_available, snapshot.gpus) for f in files}
    details = RepoDetails(repo_id, files, badges)
    try:
        details.card = model_card(repo_id, token=token)
    except HubError as exc:  # the files are still worth showing without the card
        details.card_error = f"The model card could not be loaded: {exc}"
    return details


def fetch_targets(repo_id: str, names: list[str]) -> tuple[list[FileTarget], str | None]:
    token = get_token()
    return file_targets(repo_id, names, token=token), token


def user_message(exc: BaseException) -> str:
    if isinstance(exc, HubError):
        return str(exc)
    return f"Something went wrong talking to the Hub ({type(exc).__name__}); see the log file."
