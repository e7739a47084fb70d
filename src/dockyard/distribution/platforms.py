"""Platform strings (``linux/arm64``, ``linux/arm/v7``, ``arm64``) as containerd parses them. Pure."""

from __future__ import annotations

from dockyard.errors import InvalidArgument
from dockyard.oci.descriptor import Platform

__all__ = ["DEFAULT_PLATFORM", "format_platform", "parse_platform"]

DEFAULT_PLATFORM = Platform("linux", "amd64")

_OSES = {"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos"}
_ARCH_ALIASES = {
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
}


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    arch = arch.lower()
    variant = variant.lower()
    if arch in _ARCH_ALIASES:
        alias, default_variant = _ARCH_ALIASES[arch]
        return alias, variant or default_variant
    if arch == "arm64" and variant in ("8", "v8"):
        return "arm64", ""
    if arch == "arm" and variant in ("5", "6", "7", "8"):
        return "arm", "v" + variant
    return arch, variant


def parse_platform(text: str) -> Platform:
    """``os[/arch[/variant]]`` or a bare architecture (then the OS is linux).
    ``InvalidArgument`` for an empty or over-long specifier."""
    value = text.strip()
    parts = value.split("/")
    if not value or len(parts) > 3 or any(not p for p in parts):
        raise InvalidArgument(
            f'"{text}": unknown operating system or architecture: invalid argument'
        )
    if len(parts) == 1:
        if parts[0].lower() in _OSES:
            return Platform(parts[0].lower(), DEFAULT_PLATFORM.architecture)
        arch, variant = _normalize_arch(parts[0], "")
        return Platform("linux", arch, variant)
    os_name = parts[0].lower()
    arch, variant = _normalize_arch(parts[1], parts[2] if len(parts) == 3 else "")
    return Platform(os_name, arch, variant)


def format_platform(platform: Platform) -> str:
    out = f"{platform.os}/{platform.architecture}"
    if platform.variant:
        out += f"/{platform.variant}"
    return out
