"""The optional Hugging Face token, for gated models.

Kept by `app.engine.secret_store`: the OS keyring, else a 0600 file in the data folder. The
token is never logged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from app.engine.secret_store import SecretStore, usable_keyring

log = logging.getLogger(__name__)

_TOKEN = SecretStore(user="huggingface-token", file_name="hf_token")


def load_keyring() -> None:
    """Find the keyring backend now, where the caller can afford it (the window, while it starts).

    Finding it imports every backend (Secret Service pulls in `cryptography`), which holds the
    interpreter lock for about 0.1 s: done first on a worker thread after a click, it froze the
    window for that long.
    """
    usable_keyring()


def get_token(root: Path | None = None) -> str | None:
    """Hearth's stored token; else the one ``huggingface_hub`` finds (``HF_TOKEN``, or the token
    saved by ``hf auth login`` / ``huggingface-cli login`` at ``HF_TOKEN_PATH``); else None."""
    return _TOKEN.get(root) or _hub_login_token()


def _hub_login_token() -> str | None:
    """The token ``huggingface_hub`` itself would use, or None (never raises)."""
    try:
        from huggingface_hub import get_token as hub_get_token

        return hub_get_token() or None
    except Exception as exc:  # e.g. an unreadable token file or a failed OIDC exchange
        log.warning("reading the Hugging Face login failed (%s)", type(exc).__name__)
        return None


def set_token(token: str, root: Path | None = None) -> str:
    """Store ``token``; returns where it went ("keyring" or "file")."""
    return _TOKEN.set(token.strip(), root)


def clear_token(root: Path | None = None) -> None:
    _TOKEN.clear(root)


def login_still_applies() -> str | None:
    """After ``clear_token``: why Hugging Face requests would still send a token, or None.

    ``huggingface_hub`` itself uses ``HF_TOKEN`` (or the older ``HUGGING_FACE_HUB_TOKEN``) and
    the token that ``hf auth login`` saved; Hearth falls back to the same, as ``get_token`` says.
    """
    if _hub_login_token() is None:
        return None
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(name, "").strip():
            return f"the {name} environment variable still holds a token; unset it to stop using it"
    try:
        from huggingface_hub import constants

        where = f" ({constants.HF_TOKEN_PATH})"
    except Exception:  # the location is a courtesy; the advice holds without it
        where = ""
    return f"your `hf auth login` token{where} still applies; `hf auth logout` removes it"
