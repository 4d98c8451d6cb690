"""The local server's API keys, kept like the Hub token (`app.engine.secret_store`).

Blocking (a keyring call may wait on D-Bus or a password prompt): the window calls these on a
worker thread. Keys are secrets and are never logged.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from app.engine.secret_store import SecretStore

KEY_PREFIX = "hearth-"
_KEYS = SecretStore(user="server-api-keys", file_name="server_api_keys.json")


def generate_key() -> str:
    """A new random key (256 bits), recognisable as Hearth's by its prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeysUnreadable(ValueError):
    """The stored keys are not a list of keys: shown, never silently replaced."""


def load_keys(root: Path | None = None) -> list[str]:
    try:
        value = json.loads(_KEYS.get(root) or "[]")
    except json.JSONDecodeError as exc:
        raise KeysUnreadable("the stored API keys are damaged; remove them by hand to start "
                             "afresh") from exc
    if not isinstance(value, list):
        raise KeysUnreadable("the stored API keys are not a list")
    return [k for k in value if isinstance(k, str) and k.strip()]


def save_keys(keys: list[str], root: Path | None = None) -> str:
    """Store ``keys`` (replacing the stored list); returns where they went ("keyring"/"file")."""
    return _KEYS.set(json.dumps(list(keys)), root)
