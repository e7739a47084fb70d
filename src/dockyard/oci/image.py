"""Image configs (OCI ``config.md`` / Docker image JSON): layer identity and Docker views. Pure.

Identity of layers, as the OCI spec defines it:

    diff_id(L)   sha256 of the *uncompressed* layer tar
    chain(L0)    = diff_id(L0)
    chain(Ln)    = sha256(chain(Ln-1) + " " + diff_id(Ln))

A chain ID names a whole stack of layers, so it is the key of the snapshot that holds
them unpacked; images that share a base share its chain IDs and its snapshots.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.oci.digest import is_sha256

__all__ = [
    "ZERO_TIME",
    "chain_ids",
    "created_unix",
    "diff_ids",
    "docker_config",
    "format_rfc3339",
    "parse_rfc3339",
    "validate_config",
]

ZERO_TIME = "0001-01-01T00:00:00Z"
"""What Go's zero ``time.Time`` marshals to; Docker sends it for unset times."""

# Docker's container.Config, in the order dockerd marshals it; values are the zero values
# Go sends for fields an image does not set.
_DOCKER_CONFIG_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("Hostname", ""),
    ("Domainname", ""),
    ("User", ""),
    ("AttachStdin", False),
    ("AttachStdout", False),
    ("AttachStderr", False),
    ("ExposedPorts", None),
    ("Tty", False),
    ("OpenStdin", False),
    ("StdinOnce", False),
    ("Env", None),
    ("Cmd", None),
    ("Healthcheck", None),
    ("ArgsEscaped", None),
    ("Image", ""),
    ("Volumes", None),
    ("WorkingDir", ""),
    ("Entrypoint", None),
    ("NetworkDisabled", None),
    ("MacAddress", None),
    ("OnBuild", None),
    ("Labels", None),
    ("StopSignal", None),
    ("StopTimeout", None),
    ("Shell", None),
)
# Fields Go marshals with omitempty: left out when unset.
_OMIT_EMPTY = frozenset(
    {
        "ExposedPorts",
        "Healthcheck",
        "ArgsEscaped",
        "NetworkDisabled",
        "MacAddress",
        "StopSignal",
        "StopTimeout",
        "Shell",
    }
)
_CANONICAL_KEYS = {key.lower(): key for key, _ in _DOCKER_CONFIG_DEFAULTS}

_RFC3339_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)


def chain_ids(diff_ids_: list[str]) -> list[str]:
    """Chain IDs for a bottom-first list of diff IDs (see the module docstring)."""
    out: list[str] = []
    for diff_id in diff_ids_:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


def validate_config(config: Any) -> dict[str, Any]:
    """Check the parts of an image config the engine relies on; return it typed.

    Raises ``InvalidArgument`` when it is not an object, ``rootfs.type`` is not
    ``layers``, a diff ID is not a sha256 digest, or ``config`` is not an object.
    """
    if not isinstance(config, dict):
        raise InvalidArgument("invalid image config: expected a JSON object")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict):
        raise InvalidArgument("invalid image config: missing rootfs")
    if rootfs.get("type") != "layers":
        raise InvalidArgument(f"invalid image config: rootfs type {rootfs.get('type')!r}")
    ids = rootfs.get("diff_ids") or []
    if not isinstance(ids, list) or not all(isinstance(d, str) and is_sha256(d) for d in ids):
        raise InvalidArgument("invalid image config: rootfs.diff_ids must be sha256 digests")
    inner = config.get("config")
    if inner is not None and not isinstance(inner, dict):
        raise InvalidArgument("invalid image config: 'config' must be an object")
    created = config.get("created")
    if created is not None:
        if not isinstance(created, str):
            raise InvalidArgument("invalid image config: 'created' must be a string")
        parse_rfc3339(created)
    return config


def diff_ids(config: dict[str, Any]) -> list[str]:
    """The diff IDs of a (validated) config, bottom layer first."""
    return list(validate_config(config)["rootfs"].get("diff_ids") or [])


def parse_rfc3339(text: str) -> datetime:
    """Parse RFC 3339 with up to nanosecond precision (Go writes 9 digits; Python takes 6)."""
    m = _RFC3339_RE.match(text)
    if not m:
        raise InvalidArgument(f"invalid time {text!r}: expected RFC 3339")
    date, clock, frac, zone = m.groups()
    micro = (frac or "").ljust(6, "0")[:6]
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        return datetime.fromisoformat(f"{date}T{clock}.{micro}{zone}")
    except ValueError as exc:
        raise InvalidArgument(f"invalid time {text!r}: {exc}") from None


def format_rfc3339(when: datetime) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: trailing zeros of the fraction dropped, ``Z`` zone."""
    when = when.astimezone(UTC)
    base = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        base += "." + f"{when.microsecond:06d}".rstrip("0")
    return base + "Z"


def created_unix(config: dict[str, Any]) -> int:
    """``created`` as Unix seconds; 0 when the image does not say."""
    created = config.get("created")
    if not isinstance(created, str) or not created:
        return 0
    return int(parse_rfc3339(created).timestamp())


def docker_config(config: dict[str, Any]) -> dict[str, Any]:
    """The image's runtime defaults (``config``) as Docker's ``container.Config`` JSON.

    OCI and Docker use the same casing for the keys they share; keys in other casings
    (some hand-written configs use ``cmd``) are mapped onto Docker's. Unset fields get
    Go's zero values, so clients see exactly the keys ``docker image inspect`` shows.
    """
    inner = config.get("config") or {}
    given: dict[str, Any] = {}
    for key, value in inner.items():
        given[_CANONICAL_KEYS.get(key.lower(), key)] = value
    out: dict[str, Any] = {}
    for key, default in _DOCKER_CONFIG_DEFAULTS:
        if key in given:
            out[key] = given.pop(key)
        elif key not in _OMIT_EMPTY:
            out[key] = default
    out.update(given)
    return out
