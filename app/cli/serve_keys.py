"""Which API keys `hearth serve` asks clients for: the one given on the command line and the
keys saved on the window's Developer page (`app.services.api_keys`).

Keys are asked for on the local network (or any address other machines reach), with --api-key
or --require-key, or when the window's "Require a key on this computer too" is on. The saved
keys are read only then: reading a keyring may prompt for a password.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.cli.shared import CliError

if TYPE_CHECKING:
    from app.models.store import Store

# The Developer page's setting for "Require a key on this computer too" (app.ui.developer.page).
REQUIRE_KEY_SETTING = "server.require_key"
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class ServeKeys:
    keys: tuple[str, ...]  # secrets: never printed
    required: bool
    saved: int  # how many of ``keys`` came from the saved list


def serve_keys(store: Store, *, api_key: str | None, network: bool, host: str,
               require_key: bool) -> ServeKeys:
    """The keys to serve with; `CliError` when keys are needed and none can be had."""
    exposed = network or host.lower().strip("[]") not in LOOPBACK
    saved_setting = store.get_setting(REQUIRE_KEY_SETTING) is True
    required = exposed or require_key or saved_setting or bool(api_key)
    if not required:
        return ServeKeys((), False, 0)
    given = (api_key,) if api_key else ()
    try:
        saved = _saved_keys()
    except CliError as exc:
        if not given:
            raise CliError(f"{exc}. Pass --api-key KEY to serve with a key of your own.") from exc
        print(f"hearth serve: {exc}; only the key from --api-key is accepted.", file=sys.stderr)
        saved = []
    keys = tuple(dict.fromkeys([*given, *saved]))
    if not keys:
        raise CliError(f"{_why(network, exposed, require_key, saved_setting)} needs an API key, "
                       "and none is saved. Generate one on Hearth's Developer page (API keys), "
                       "or pass --api-key KEY (or set $HEARTH_API_KEY).")
    return ServeKeys(keys, True, len([k for k in keys if k in saved]))


def _saved_keys() -> list[str]:
    from app.services.api_keys import KeysUnreadable, load_keys

    try:
        return load_keys()
    except (KeysUnreadable, OSError, UnicodeDecodeError) as exc:
        raise CliError(f"the API keys saved by Hearth could not be read ({exc})") from exc


def _why(network: bool, exposed: bool, require_key: bool, saved_setting: bool) -> str:
    if network:
        return "Serving on the local network"
    if exposed:
        return "Serving on an address other machines can reach"
    if require_key:
        return "--require-key"
    return "Your setting “Require a key on this computer too” (Developer page)"
