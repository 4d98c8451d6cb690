"""The server's API keys: kept in the OS keyring like the Hub token, else in a 0600 file.

Qt-free and blocking (a keyring call may wait on D-Bus or a password prompt): the page calls
these on its worker threads. Keys are secrets and are never logged.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

from app.engine.hub.hf_token import _keyring
from app.engine.paths import data_paths

log = logging.getLogger(__name__)

_SERVICE = "hearth"
_USER = "server-api-keys"
_FILE = "server_api_keys.json"
KEY_PREFIX = "hearth-"


def generate_key() -> str:
    """A new random key (256 bits), recognisable as Hearth's by its prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _key_file(root: Path | None) -> Path:
    return (root or data_paths().root) / _FILE


def _parse(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except json.JSONDecodeError:
        return []
    if not isinstance(value, list):
        return []
    return [k for k in value if isinstance(k, str) and k.strip()]


def load_keys(root: Path | None = None) -> list[str]:
    ring = _keyring()
    if ring is not None:
        try:
            stored = ring.get_password(_SERVICE, _USER)  # type: ignore[attr-defined]
            if stored:
                return _parse(stored)
        except Exception as exc:
            log.warning("reading the API keys from the keyring failed (%s)", type(exc).__name__)
    path = _key_file(root)
    return _parse(path.read_text(encoding="utf-8")) if path.is_file() else []


def save_keys(keys: list[str], root: Path | None = None) -> str:
    """Store ``keys`` (replacing the stored list); returns where they went ("keyring"/"file")."""
    text = json.dumps(list(keys))
    ring = _keyring()
    if ring is not None:
        try:
            ring.set_password(_SERVICE, _USER, text)  # type: ignore[attr-defined]
            _key_file(root).unlink(missing_ok=True)  # no plain-text copy left behind
            return "keyring"
        except Exception as exc:
            log.warning("writing the keyring failed (%s); using a file", type(exc).__name__)
    path = _key_file(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start: the keys are never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)
    return "file"
