"""``dockyard-registry``: serve the OCI distribution API, or collect garbage.

    dockyard-registry serve [CONFIG] [--config FILE] [--addr HOST:PORT] [--root DIR]
                            [--log-level LEVEL]
    dockyard-registry garbage-collect [CONFIG] [--config FILE] [--root DIR] [--dry-run]

``serve`` logs ``listening on http(s)://HOST:PORT`` once the socket is bound (port 0 picks a
free port and the line tells which), and stops cleanly on SIGTERM or SIGINT. Exit status: 0
after a clean stop, 2 for a bad command line or configuration, 1 when serving fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import logging
import signal
import ssl
import sys
from pathlib import Path

from aiohttp import web

from dockyard import __version__
from dockyard.errors import DockyardError
from dockyard.registry.app import create_app
from dockyard.registry.config import RegistryConfig, load_config, parse_addr

__all__ = ["main"]

log = logging.getLogger("dockyard.registry")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard-registry", description="OCI distribution registry")
    p.add_argument("--version", action="version", version=f"dockyard-registry {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the /v2/ API")
    serve.add_argument("config_pos", nargs="?", type=Path, metavar="CONFIG")
    serve.add_argument("--config", type=Path, help="YAML or TOML configuration file")
    serve.add_argument("--addr", help="listen address host:port (default 127.0.0.1:5000)")
    serve.add_argument("--root", type=Path, help="filesystem storage root directory")
    serve.add_argument("--log-level", help="debug, info, warning, error")

    gc = sub.add_parser("garbage-collect", help="delete unreferenced blobs and stale uploads")
    gc.add_argument("config_pos", nargs="?", type=Path, metavar="CONFIG")
    gc.add_argument("--config", type=Path, help="YAML or TOML configuration file")
    gc.add_argument("--root", type=Path, help="filesystem storage root directory")
    gc.add_argument("--dry-run", "-d", action="store_true", help="report, delete nothing")
    gc.add_argument("--log-level", help="debug, info, warning, error")
    return p


def _config(args: argparse.Namespace) -> RegistryConfig:
    path = args.config or args.config_pos
    cfg = load_config(path)
    return cfg.with_overrides(
        addr=getattr(args, "addr", None), root=args.root, log_level=args.log_level
    )


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _ssl_context(cfg: RegistryConfig) -> ssl.SSLContext | None:
    if cfg.tls is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cfg.tls.certificate), str(cfg.tls.key))
    return ctx


async def _serve(cfg: RegistryConfig) -> None:
    host, port = parse_addr(cfg.addr)
    ctx = _ssl_context(cfg)
    app = create_app(cfg)
    runner = web.AppRunner(app, access_log=logging.getLogger("dockyard.registry.access"))
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, host, port, ssl_context=ctx, reuse_address=True)
        await site.start()
        scheme = "https" if ctx else "http"
        for sock in runner.addresses:
            bound = sock if isinstance(sock, tuple) else (str(sock), port)
            shown = f"[{bound[0]}]" if ":" in str(bound[0]) else bound[0]
            print(f"listening on {scheme}://{shown}:{bound[1]}", file=sys.stderr, flush=True)
        await stop.wait()
        log.info("stopping")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()


def _garbage_collect(cfg: RegistryConfig, dry_run: bool) -> int:
    if importlib.util.find_spec("dockyard.registry.gc") is None:
        print("dockyard-registry: garbage-collect is not available in this build", file=sys.stderr)
        return 1
    module = importlib.import_module("dockyard.registry.gc")
    return int(module.main_gc(cfg, dry_run))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = _config(args)
    except DockyardError as exc:
        print(f"dockyard-registry: {exc}", file=sys.stderr)
        return 2
    _setup_logging(cfg.log_level)
    if args.command == "garbage-collect":
        return _garbage_collect(cfg, args.dry_run)
    try:
        asyncio.run(_serve(cfg))
    except DockyardError as exc:
        print(f"dockyard-registry: {exc}", file=sys.stderr)
        return 2
    except (OSError, ssl.SSLError, ValueError) as exc:
        log.error("cannot serve: %s", exc)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
