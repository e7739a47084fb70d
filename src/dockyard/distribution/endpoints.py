"""Which URLs serve a registry domain: mirrors, insecure registries, loopback. Pure.

Rules (moby ``registry/config.go`` and ``service_v2.go``):

- ``docker.io`` is pulled through each ``registry-mirrors`` entry in order, then the official
  ``https://registry-1.docker.io``; pushes and logins skip the mirrors.
- Loopback hosts (``localhost``, 127.0.0.0/8, ``::1``) are spoken to in plain HTTP.
- ``insecure-registries`` entries (``host[:port]`` or a CIDR of literal IPs) are tried over
  HTTPS without certificate checks first, then over plain HTTP.
- Anything else is HTTPS with verified certificates.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from dockyard.errors import InvalidArgument
from dockyard.reference import DEFAULT_DOMAIN

__all__ = ["OFFICIAL_REGISTRY", "Endpoint", "EndpointConfig", "normalize_server_address"]

OFFICIAL_REGISTRY = "https://registry-1.docker.io"
_INDEX_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True)
class Endpoint:
    """A base URL (``scheme://host[:port]``, no trailing slash) serving ``/v2/``."""

    url: str
    mirror: bool = False
    tls_verify: bool = True

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def plain_http(self) -> bool:
        return self.url.startswith("http://")


def _validate_mirror(value: str) -> str:
    """moby's ValidateMirror: http(s) URL, no credentials, no path, query or fragment."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(f"invalid mirror: unsupported scheme or missing host in {value!r}")
    if parts.username or parts.password:
        raise InvalidArgument(f"invalid mirror: credentials are not allowed in {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidArgument(
            f"invalid mirror: path, query or fragment are not allowed in {value!r}"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _host_only(host_port: str) -> str:
    """``127.0.0.1:5000`` → ``127.0.0.1``; ``[::1]:5000`` → ``::1``."""
    if host_port.startswith("["):
        return host_port[1:].split("]", 1)[0]
    if host_port.count(":") == 1:
        return host_port.split(":", 1)[0]
    return host_port


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback(host_port: str) -> bool:
    host = _host_only(host_port).lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = _ip(host)
    return ip is not None and ip.is_loopback


def normalize_server_address(address: str) -> str:
    """A login ``serveraddress`` as a registry domain: ``https://index.docker.io/v1/`` and
    empty → ``docker.io``; ``http://127.0.0.1:5000/`` → ``127.0.0.1:5000``."""
    text = address.strip()
    if "://" in text:
        text = urlsplit(text).netloc
    text = text.split("/", 1)[0].strip()
    if not text or text.lower() in _INDEX_ALIASES:
        return DEFAULT_DOMAIN
    return text


class EndpointConfig:
    """The daemon's registry settings; ``endpoints()`` maps a domain to URLs to try in order."""

    def __init__(
        self,
        mirrors: Sequence[str] = (),
        insecure: Sequence[str] = (),
        *,
        official: str = OFFICIAL_REGISTRY,
    ) -> None:
        self.mirrors = [_validate_mirror(m) for m in mirrors]
        self.official = official.rstrip("/")
        self._insecure_hosts: set[str] = set()
        self._insecure_nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in insecure:
            value = entry.strip()
            if "://" in value:
                value = urlsplit(value).netloc
            value = value.rstrip("/")
            if not value:
                continue
            if "/" in value:
                try:
                    self._insecure_nets.append(ipaddress.ip_network(value, strict=False))
                except ValueError:
                    raise InvalidArgument(f"invalid insecure registry {entry!r}") from None
            else:
                self._insecure_hosts.add(value.lower())

    def is_insecure(self, host_port: str) -> bool:
        """Loopback, listed, or inside a listed CIDR (literal IPs only; no DNS here)."""
        lowered = host_port.lower()
        if is_loopback(lowered):
            return True
        if lowered in self._insecure_hosts or _host_only(lowered) in self._insecure_hosts:
            return True
        ip = _ip(_host_only(lowered))
        return ip is not None and any(ip in net for net in self._insecure_nets)

    def endpoints(self, domain: str, *, mirrors: bool = True) -> list[Endpoint]:
        """URLs serving ``domain``, in the order to try them."""
        if domain == DEFAULT_DOMAIN:
            out = [Endpoint(m, mirror=True) for m in self.mirrors] if mirrors else []
            out.append(Endpoint(self.official))
            return out
        if is_loopback(domain):
            return [Endpoint(f"http://{domain}")]
        if self.is_insecure(domain):
            return [Endpoint(f"https://{domain}", tls_verify=False), Endpoint(f"http://{domain}")]
        return [Endpoint(f"https://{domain}")]
