"""A container's log driver and options, as dockerd merges and checks them at create.

Every reading driver (``json-file``, ``local``, ``k8s-file``) is written by the monitor in one
format, so only the options that change what is kept matter: ``max-size`` (rotate past it)
and ``max-file`` (how many files, the live one included). ``none`` keeps nothing. The
daemon's ``log-driver``/``log-opts`` fill what a container leaves unset, as in moby's
``mergeAndVerifyLogConfig``: the daemon's options apply only to its own driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.units import ram_in_bytes

__all__ = ["DRIVERS", "LogLimits", "log_limits", "merge_log_config"]

# driver → the options dockerd's driver accepts
DRIVERS: dict[str, frozenset[str]] = {
    "json-file": frozenset(
        {"max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"}
    ),
    "local": frozenset({"max-file", "max-size", "compress"}),
    "k8s-file": frozenset({"max-file", "max-size"}),
    "none": frozenset(),
}


@dataclass(frozen=True)
class LogLimits:
    size_max: int | None  # bytes; None: unbounded
    max_files: int  # files kept, the live one included


def merge_log_config(
    log_config: Mapping[str, Any] | None, default_driver: str, default_opts: Mapping[str, str]
) -> dict[str, Any]:
    """The container's ``LogConfig`` with the daemon's defaults merged in, checked."""
    driver = str((log_config or {}).get("Type") or default_driver)
    options = {str(k): str(v) for k, v in ((log_config or {}).get("Config") or {}).items()}
    if driver == default_driver:
        for key, value in default_opts.items():
            options.setdefault(key, value)
    if driver not in DRIVERS:
        raise InvalidArgument(f"logger: no log driver named '{driver}' is registered")
    if driver != "none":
        for key in options:
            if key not in DRIVERS[driver]:
                raise InvalidArgument(f"unknown log opt '{key}' for {driver} log driver")
        log_limits(options, driver)
    return {"Type": driver, "Config": options}


# the local driver keeps 100 MB by default (dockerd: 5 files of 20 MB)
_LOCAL_DEFAULTS = {"max-size": "20m", "max-file": "5"}


def log_limits(options: Mapping[str, str], driver: str = "json-file") -> LogLimits:
    """``max-size`` and ``max-file`` with dockerd's checks and messages."""
    if driver == "local":
        options = {**_LOCAL_DEFAULTS, **options}
    size_text = options.get("max-size", "")
    size: int | None = None
    if size_text and size_text != "-1":
        try:
            size = ram_in_bytes(size_text)
        except ValueError:
            raise InvalidArgument(f"invalid log opt max-size: {size_text}") from None
    files_text = options.get("max-file", "")
    files = 1
    if files_text:
        try:
            files = int(files_text)
        except ValueError:
            raise InvalidArgument(f'strconv.Atoi: parsing "{files_text}": invalid syntax') from None
        if files < 1:
            raise InvalidArgument("max-file cannot be less than 1")
    return LogLimits(size, files)
