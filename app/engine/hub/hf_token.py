"""The optional Hugging Face token, for gated models.

Kept in the OS keyring (``keyring``: Secret Service, macOS Keychain, Windows Credential
Locker) when it has a working backend; otherwise (headless Linux has none: keyring's "fail"
backend) in a file in the data folder that only the user can read (mode 0600). The token is
never logged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from app.engine.paths import data_paths

log = logging.getLogger(__name__)

_SERVICE = "hearth"
_USER = "huggingface-token"
_FILE = "hf_token"


def _keyring() -> object | None:
    """The keyring module if it has a usable (not fail/null) backend, else None."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:
        return None
    if isinstance(backend, fail.Keyring) or "null" in type(backend).__module__.lower():
        return None
    return keyring


def load_keyring() -> None:
    """Find the keyring backend now, where the caller can afford it (the window, while it starts).

    Finding it imports every backend (Secret Service pulls in `cryptography`), which holds the
    interpreter lock for about 0.1 s: done first on a worker thread after a click, it froze the
    window for that long.
    """
    _keyring()


def _token_file(root: Path | None) -> Path:
    return (root or data_paths().root) / _FILE


def get_token(root: Path | None = None) -> str | None:
    """Hearth's stored token; else the one ``huggingface_hub`` finds (``HF_TOKEN``, or the token
    saved by ``hf auth login`` / ``huggingface-cli login`` at ``HF_TOKEN_PATH``); else None."""
    ring = _keyring()
    if ring is not None:
        try:
            value = ring.get_password(_SERVICE, _USER)  # type: ignore[attr-defined]
            if value:
                return value
        except Exception as exc:
            log.warning("reading the keyring failed (%s)", type(exc).__name__)
    path = _token_file(root)
    if path.is_file():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    return _hub_login_token()


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
    token = token.strip()
    ring = _keyring()
    if ring is not None:
        try:
            ring.set_password(_SERVICE, _USER, token)  # type: ignore[attr-defined]
            # A token saved before a keyring was available must not linger in plain text.
            _token_file(root).unlink(missing_ok=True)
            return "keyring"
        except Exception as exc:
            log.warning("writing the keyring failed (%s); using a file", type(exc).__name__)
    path = _token_file(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Create with 0600 from the start so the token is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token)
    os.chmod(path, 0o600)
    return "file"


def clear_token(root: Path | None = None) -> None:
    ring = _keyring()
    if ring is not None:
        try:
            ring.delete_password(_SERVICE, _USER)  # type: ignore[attr-defined]
        except Exception as exc:
            log.debug("no keyring token to delete (%s)", type(exc).__name__)
    _token_file(root).unlink(missing_ok=True)


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
