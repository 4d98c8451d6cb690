"""Secrets (the Hub token, the server's API keys) in the OS keyring, else in a 0600 file.

The keyring (Secret Service, macOS Keychain, Windows Credential Locker) is used when it has a
working backend; headless Linux has none (keyring's "fail" backend), and then the secret goes
to a file in the data folder that only the user can read. Secrets are never logged.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from app.engine.paths import data_paths

log = logging.getLogger(__name__)

SERVICE = "hearth"


def usable_keyring() -> object | None:
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


@dataclass(frozen=True)
class SecretStore:
    user: str  # the keyring entry's name under SERVICE
    file_name: str  # the fallback file in the data folder

    def file(self, root: Path | None = None) -> Path:
        return (root or data_paths().root) / self.file_name

    def get(self, root: Path | None = None) -> str | None:
        ring = usable_keyring()
        if ring is not None:
            try:
                value = ring.get_password(SERVICE, self.user)  # type: ignore[attr-defined]
                if value:
                    return value
            except Exception as exc:
                log.warning("reading the keyring failed (%s)", type(exc).__name__)
        path = self.file(root)
        if path.is_file():
            return path.read_text(encoding="utf-8").strip() or None
        return None

    def set(self, value: str, root: Path | None = None) -> str:
        """Store ``value``; returns where it went ("keyring" or "file")."""
        ring = usable_keyring()
        if ring is not None:
            try:
                ring.set_password(SERVICE, self.user, value)  # type: ignore[attr-defined]
                # A copy saved before a keyring was available must not linger in plain text.
                self.file(root).unlink(missing_ok=True)
                return "keyring"
            except Exception as exc:
                log.warning("writing the keyring failed (%s); using a file", type(exc).__name__)
        path = self.file(root)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600 from the start, so the secret is never readable by others, even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # an older file keeps its mode through O_CREAT: narrow it first
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(value)
        return "file"

    def clear(self, root: Path | None = None) -> None:
        ring = usable_keyring()
        if ring is not None:
            try:
                ring.delete_password(SERVICE, self.user)  # type: ignore[attr-defined]
            except Exception as exc:
                log.debug("no keyring entry to delete (%s)", type(exc).__name__)
        self.file(root).unlink(missing_ok=True)
