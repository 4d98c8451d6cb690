"""Each model file's load settings, as saved from the window's load dialog, else defaults.

The window, `hearth chat` and the local server all load a file with these, so the same file
loads the same way (and, in the shared pool, as one copy).
"""

from __future__ import annotations

from app.engine.types import LoadSettings
from app.models.store import Store

MAX_DEFAULT_CTX = 8192  # longer contexts cost RAM most chats never use


def default_load_settings(context_length: int | None) -> LoadSettings:
    n_ctx = min(MAX_DEFAULT_CTX, context_length) if context_length else MAX_DEFAULT_CTX
    return LoadSettings(n_ctx=n_ctx)


def settings_key(path: str) -> str:
    return f"load_settings:{path}"


def saved_load_settings(store: Store, path: str, context_length: int | None) -> LoadSettings:
    """The settings saved for ``path``, else the defaults; unknown keys from older versions are
    dropped so a stale entry never stops a model from loading."""
    defaults = default_load_settings(context_length)
    saved = store.get_setting(settings_key(path))
    if not isinstance(saved, dict):
        return defaults
    known = {k: v for k, v in saved.items() if k in LoadSettings.__dataclass_fields__}
    try:
        return LoadSettings(**{**defaults.to_dict(), **known})
    except TypeError:  # a hand-edited entry with a wrong type never stops a model from loading
        return defaults
