"""What the server binds to and whom it answers: address, keys, allowed Hosts and Origins."""

from __future__ import annotations

import socket
from dataclasses import dataclass

DEFAULT_PORT = 1234  # LM Studio's, so clients configured for it work unchanged
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_IMAGE_FETCH_TIMEOUT_S = 10.0  # one web image: its redirects and whole body together
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class ConfigError(ValueError):
    """A server setting that cannot work; the message is meant for the user."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0: an ephemeral port (tests)
    network: bool = False  # bind 0.0.0.0 so other machines can reach it; needs an API key
    api_keys: tuple[str, ...] = ()
    require_key: bool = False  # keys on localhost too (always on with `network`)
    cors_origins: tuple[str, ...] = ()  # empty: no CORS answers at all
    allowed_hosts: tuple[str, ...] = ()  # beside loopback (and this machine's names on a network)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    default_ttl_s: float | None = None  # just-in-time models: the pool's default when None
    # Fetch image_url parts' http(s) addresses: off, since the server would then make web
    # requests on a client's behalf (to this machine's network too). Ollama refuses them too.
    fetch_images: bool = False
    image_fetch_timeout_s: float = DEFAULT_IMAGE_FETCH_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.exposed and not self.api_keys:
            where = "the local network" if self.network else self.host
            raise ConfigError(f"Serving on {where} needs an API key (--api-key), since other "
                              "machines can reach it.")
        if self.require_key and not self.api_keys:
            raise ConfigError("An API key is required but none is set.")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"Port {self.port} is not a valid port (0–65535).")
        if not self.image_fetch_timeout_s > 0:
            raise ConfigError("The image fetch time limit must be over 0 seconds.")

    @property
    def bind_host(self) -> str:
        return "0.0.0.0" if self.network else self.host

    @property
    def exposed(self) -> bool:
        """Whether other machines can reach it (the network, or a non-loopback address)."""
        return self.network or self.host.lower().strip("[]") not in LOOPBACK_HOSTS

    @property
    def keys_required(self) -> bool:
        return self.exposed or self.require_key

    def host_allow_list(self) -> frozenset[str]:
        """Host header values (without port) this server answers; all others are DNS rebinding."""
        hosts = set(LOOPBACK_HOSTS) | {h.lower() for h in self.allowed_hosts}
        hosts.add(self.host.lower().strip("[]"))
        if self.exposed:
            hosts |= machine_names()
        return frozenset(hosts)


def machine_names() -> set[str]:
    """This machine's host names and interface addresses, as clients on the network see them."""
    import psutil

    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    names.add(socket.gethostname().lower() + ".local")  # mDNS
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                names.add(address.address.split("%")[0].lower())
    return {n for n in names if n}
