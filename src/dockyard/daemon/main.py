"""``dockyardd``: parse flags, wire services, serve the Engine API on unix sockets.

SIGTERM/SIGINT stop serving and leave containers running (conmon watches them); the next
start reconciles what happened meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import grp
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from aiohttp import web

from dockyard import __version__, errors
from dockyard.daemon import memory
from dockyard.daemon.api import ROUTES
from dockyard.daemon.app import create_app
from dockyard.daemon.config import DaemonConfig, load_config
from dockyard.daemon.services import Services, build_services
from dockyard.runtime import ExitWatcher

__all__ = ["main"]

log = logging.getLogger("dockyardd")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dockyardd", description="Dockyard container engine daemon")
    p.add_argument(
        "--data-root", type=Path, help="root of persisted state (default /var/lib/dockyard)"
    )
    p.add_argument("--exec-root", type=Path, help="root of runtime state (default /run/dockyard)")
    p.add_argument(
        "-H", "--host", action="append", dest="hosts", default=[], help="unix://PATH to listen on"
    )
    p.add_argument(
        "--config-file", type=Path, help="daemon.json (default /etc/dockyard/daemon.json)"
    )
    p.add_argument("--pidfile", "-p", type=Path)
    p.add_argument("--runtime", help="path of the OCI runtime binary (default /usr/sbin/runc)")
    p.add_argument("--init", action="store_true", default=None, help="Run an init in containers")
    p.add_argument("--init-path", help="Path to the docker-init binary")
    p.add_argument("--cgroup-parent", help="cgroupfs parent of containers (default /dockyard)")
    p.add_argument(
        "--monitor",
        help="per-container monitor binary: dockyard-monitor or conmon"
        " (default /usr/local/libexec/dockyard/dockyard-monitor if installed, else /usr/bin/conmon)",
    )
    p.add_argument("--group", "-G", help="group owning the socket (default dockyard)")
    p.add_argument("--log-level", "-l", help="debug, info, warn, error")
    p.add_argument("--bridge", "-b", help="bridge for the default network")
    p.add_argument("--bip", help="address/prefix of the default bridge (e.g. 10.213.0.1/24)")
    p.add_argument("--iptables", type=_flag_bool, help="add iptables rules (default true)")
    p.add_argument("--ip-masq", type=_flag_bool, help="masquerade bridge subnets (default true)")
    p.add_argument(
        "--userland-proxy", type=_flag_bool, help="proxy published ports in-process (default true)"
    )
    p.add_argument(
        "--default-address-pool",
        action="append",
        default=[],
        type=_address_pool,
        help="base=CIDR,size=N: subnets for new networks",
    )
    p.add_argument("--dns", action="append", default=[], help="DNS server for containers")
    p.add_argument(
        "--dns-search", action="append", default=[], help="DNS search domain for containers"
    )
    p.add_argument(
        "--dns-opt", action="append", dest="dns_opts", default=[], help="DNS option for containers"
    )
    p.add_argument("--mtu", type=int, help="MTU of the default bridge (default 1500)")
    p.add_argument(
        "--default-shm-size", type=_size, help="default /dev/shm size of containers (default 64M)"
    )
    p.add_argument("--default-ipc-mode", help='"private" (default) or "shareable"')
    p.add_argument(
        "--default-cgroupns-mode", help='"host" or "private" (default: private on cgroup v2)'
    )
    p.add_argument(
        "--label", action="append", dest="labels", default=[], help="key=value label of the daemon"
    )
    p.add_argument("--storage-driver", "-s", help="storage driver (overlay2 only)")
    p.add_argument("--log-driver", help="default log driver of containers (default json-file)")
    p.add_argument(
        "--log-opt",
        action="append",
        default=[],
        type=_key_value,
        help="key=value default log driver option",
    )
    p.add_argument(
        "--seccomp-profile", help='containers\' default: "builtin", "unconfined" or a file'
    )
    p.add_argument("--experimental", action="store_true", default=None, help="experimental API")
    p.add_argument("--max-concurrent-downloads", type=int, help="per pull (default 3)")
    p.add_argument("--max-concurrent-uploads", type=int, help="per push (default 5)")
    p.add_argument("--version", "-v", action="version", version=f"Dockyard version {__version__}")
    return p.parse_args(argv)


def _socket_group(name: str) -> int:
    """The socket's group; created like dockerd's ``docker`` group when missing."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        pass
    import subprocess

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["groupadd", "--system", name], check=True, capture_output=True, timeout=20)
        return grp.getgrnam(name).gr_gid
    return 0


def _listen(path: Path, gid: int) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chown(path, 0, gid)
    os.chmod(path, 0o660)
    sock.listen(256)
    sock.setblocking(False)
    return sock


def _flag_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean: {text}")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"invalid key=value: {text}")
    return key, value


def _size(text: str) -> int:
    from dockyard.units import ram_in_bytes

    try:
        return ram_in_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _address_pool(text: str) -> dict[str, object]:
    fields = dict(item.partition("=")[::2] for item in text.split(","))
    if "base" not in fields or "size" not in fields or not fields["size"].isdigit():
        raise argparse.ArgumentTypeError(f"invalid address pool: {text}")
    return {"base": fields["base"], "size": int(fields["size"])}


async def _serve(cfg: DaemonConfig) -> int:
    memory.limit_arenas()
    services: Services = build_services(cfg)
    await services.networks.start(services.containers.running_names())
    await services.containers.recover()
    app = create_app(services, ROUTES)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    gid = _socket_group(cfg.group)
    sockets = [_listen(p, gid) for p in cfg.unix_socket_paths()]
    for sock in sockets:
        await web.SockSite(runner, sock).start()
    watcher = ExitWatcher(cfg.exec_root / "exits")
    watch_task = asyncio.get_running_loop().create_task(watcher.run(services.containers.on_exit))
    if cfg.pidfile:
        cfg.pidfile.parent.mkdir(parents=True, exist_ok=True)
        tmp = cfg.pidfile.with_name(cfg.pidfile.name + ".tmp")
        tmp.write_text(str(os.getpid()))
        tmp.replace(cfg.pidfile)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("dockyardd %s listening on %s", __version__, ", ".join(cfg.hosts))
    await stop.wait()
    log.info("shutting down; containers keep running")
    watch_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watch_task
    await runner.cleanup()
    await services.containers.shutdown()
    await services.networks.shutdown(any_running=services.containers.count()["running"] > 0)
    for path in cfg.unix_socket_paths():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    if cfg.pidfile:
        with contextlib.suppress(FileNotFoundError):
            cfg.pidfile.unlink()
    services.db.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    overrides = {
        "data_root": args.data_root,
        "exec_root": args.exec_root,
        "hosts": args.hosts,
        "pidfile": args.pidfile,
        "runtime": args.runtime,
        "conmon": args.monitor,
        "cgroup_parent": args.cgroup_parent,
        "init": args.init,
        "init_path": args.init_path,
        "group": args.group,
        "log_level": args.log_level,
        "bridge": args.bridge,
        "bip": args.bip,
        "iptables": args.iptables,
        "ip_masq": args.ip_masq,
        "userland_proxy": args.userland_proxy,
        "default_address_pools": args.default_address_pool,
        "dns": args.dns,
        "dns_search": args.dns_search,
        "dns_opts": args.dns_opts,
        "mtu": args.mtu,
        "default_shm_size": args.default_shm_size,
        "default_ipc_mode": args.default_ipc_mode,
        "default_cgroupns_mode": args.default_cgroupns_mode,
        "labels": args.labels,
        "storage_driver": args.storage_driver,
        "log_driver": args.log_driver,
        "log_opts": dict(args.log_opt) if args.log_opt else None,
        "seccomp_profile": args.seccomp_profile,
        "experimental": args.experimental,
        "max_concurrent_downloads": args.max_concurrent_downloads,
        "max_concurrent_uploads": args.max_concurrent_uploads,
    }
    try:
        cfg = load_config(args.config_file, overrides)
    except errors.DockyardError as exc:
        print(f"dockyardd: {exc.message}", file=sys.stderr)
        return 1
    level = {"debug": logging.DEBUG, "warn": logging.WARNING, "error": logging.ERROR}.get(
        cfg.log_level, logging.INFO
    )
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if os.geteuid() != 0:
        print("dockyardd: must run as root", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_serve(cfg))
    except errors.DockyardError as exc:
        print(f"dockyardd: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
