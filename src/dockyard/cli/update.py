"""``update [OPTIONS] CONTAINER...``: new resource limits and restart policy (docker's CLI).

The body is docker's UpdateConfig: unset flags send zero values (the daemon keeps the current
setting), ``--pids-limit`` only when given. Each container updated prints its name; errors are
collected and printed after, exit 1 (like ``pause``). Without any flag: docker's
"you must provide one or more flags when using this command".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from dockyard.client import Client
from dockyard.client.container_ops_api import container_update
from dockyard.errors import InvalidArgument

from .base import write_stderr
from .common import DockerCommand, StatusError, click_flags, get_client, require_args
from .containers import _parallel, _report
from .createopts import parse_bytes, parse_memory_swap, parse_restart
from .flagspec import INT, Flag

__all__ = ["UPDATE_FLAGS", "update", "update_config"]

UPDATE_FLAGS: tuple[Flag, ...] = (
    Flag(
        "--blkio-weight",
        dest="blkio_weight",
        kind=INT,
        help="Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)",
    ),
    Flag("--cpu-period", dest="cpu_period", kind=INT, help="Limit CPU CFS period"),
    Flag("--cpu-quota", dest="cpu_quota", kind=INT, help="Limit CPU CFS quota"),
    Flag("-c", "--cpu-shares", dest="cpu_shares", kind=INT, help="CPU shares (relative weight)"),
    Flag("--cpus", dest="cpus", help="Number of CPUs"),
    Flag("--cpuset-cpus", dest="cpuset_cpus", help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("--cpuset-mems", dest="cpuset_mems", help="MEMs in which to allow execution (0-3, 0,1)"),
    Flag("-m", "--memory", dest="memory", help="Memory limit"),
    Flag("--memory-reservation", dest="memory_reservation", help="Memory soft limit"),
    Flag(
        "--memory-swap",
        dest="memory_swap",
        help="Swap limit equal to memory plus swap: -1 to enable unlimited swap",
    ),
    Flag("--pids-limit", dest="pids_limit", kind=INT, help="Tune container pids limit"),
    Flag("--restart", dest="restart", help="Restart policy to apply when a container exits"),
)


def _cpus(text: str) -> int:
    try:
        return round(float(text) * 1e9)
    except ValueError:
        raise InvalidArgument(
            f'invalid argument "{text}" for "--cpus" flag: failed to parse'
        ) from None


def update_config(opts: dict[str, Any]) -> dict[str, Any]:
    """The UpdateConfig body docker sends for these flag values (``None``: not given)."""
    if all(opts.get(f.dest) is None for f in UPDATE_FLAGS):
        raise InvalidArgument("you must provide one or more flags when using this command")
    body: dict[str, Any] = {
        "BlkioWeight": opts.get("blkio_weight") or 0,
        "CpuShares": opts.get("cpu_shares") or 0,
        "Memory": parse_bytes(opts["memory"]) if opts.get("memory") else 0,
        "NanoCpus": _cpus(opts["cpus"]) if opts.get("cpus") else 0,
        "CpuPeriod": opts.get("cpu_period") or 0,
        "CpuQuota": opts.get("cpu_quota") or 0,
        "CpusetCpus": opts.get("cpuset_cpus") or "",
        "CpusetMems": opts.get("cpuset_mems") or "",
        "MemoryReservation": (
            parse_bytes(opts["memory_reservation"]) if opts.get("memory_reservation") else 0
        ),
        "MemorySwap": parse_memory_swap(opts["memory_swap"]) if opts.get("memory_swap") else 0,
    }
    if opts.get("pids_limit") is not None:
        body["PidsLimit"] = opts["pids_limit"]
    body["RestartPolicy"] = parse_restart(opts.get("restart") or "")
    return body


@click.command(
    cls=DockerCommand,
    usage="update [OPTIONS] CONTAINER [CONTAINER...]",
    context_settings={"help_option_names": ["--help"]},
    short_help="Update configuration of one or more containers",
)
@click_flags(UPDATE_FLAGS, args="containers")
@click.pass_context
def update(ctx: click.Context, /, containers: Sequence[str], **opts: Any) -> None:
    """Update configuration of one or more containers."""
    require_args(ctx, tuple(containers), minimum=1)
    try:
        body = update_config(opts)
    except InvalidArgument as exc:
        raise StatusError(1, exc.message) from exc
    client = get_client(ctx)

    def op(c: Client, name: str) -> None:
        for warning in container_update(c, name, body):
            write_stderr(warning)

    _report(list(containers), _parallel(client, list(containers), op))
