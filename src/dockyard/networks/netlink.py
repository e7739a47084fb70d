"""Netlink through pyroute2: bridges, veth pairs and network namespaces kept as file handles.

Every function here is blocking; callers run them in a worker thread (``asyncio.to_thread``).
pyroute2's synchronous ``IPRoute`` runs its own event loop and must not be used on the
daemon's loop thread.

A namespace handle is an nsfs bind mount on a file under ``<exec-root>/netns/``: the
namespace outlives the container's processes until ``remove_netns`` unmounts it, which also
destroys the veth ends inside it. Work inside a namespace goes through a netlink (or any)
socket created by a short-lived helper thread that ``setns``es in, creates the socket, and
switches back: a socket stays bound to the namespace it was created in, so the daemon's own
threads never change namespace.

Errors: pyroute2's ``NetlinkError`` and ``OSError`` become ``SystemError`` (``Conflict`` for
an existing name) at this boundary.

pyroute2 is imported on first use, not with this module: it costs ~10 MiB of resident memory,
which an idle daemon (no container on a bridge yet) does not need to pay.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from dockyard import errors
from dockyard.mount import Mount, mount_all, unmount

__all__ = [
    "BridgeInfo",
    "add_veth",
    "configure_container_iface",
    "create_netns",
    "delete_link",
    "enslave",
    "ensure_bridge",
    "link_exists",
    "links_with_master",
    "remove_netns",
    "socket_in_netns",
]

CLONE_NEWNET = 0x40000000
NETLINK_ROUTE = 0
T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)

BridgeInfo = dict[str, Any]


def _iproute(**kwargs: Any) -> Any:
    """A pyroute2 ``IPRoute`` (imported here, on first use)."""
    from pyroute2 import IPRoute

    return IPRoute(**kwargs)


def _netlink_error() -> type[Exception]:
    from pyroute2.netlink.exceptions import NetlinkError

    error: type[Exception] = NetlinkError
    return error


def _translate(exc: BaseException, what: str) -> errors.DockyardError:
    if isinstance(exc, _netlink_error()) and getattr(exc, "code", 0) == errno.EEXIST:
        return errors.Conflict(f"{what}: file exists")
    if isinstance(exc, _netlink_error()):
        return errors.SystemError(f"{what}: {os.strerror(getattr(exc, 'code', 0))}")
    return errors.SystemError(f"{what}: {exc}")


@contextlib.contextmanager
def _host() -> Iterator[Any]:
    ipr = _iproute(groups=0)
    try:
        yield ipr
    finally:
        ipr.close()


def _in_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` on a fresh thread (it may change that thread's namespace) and return its value."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, name="dockyard-netns")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def _setns_and(path: Path | None, make: Callable[[], T]) -> T:
    """In a helper thread: enter ``path``'s netns (or a new one when None), call ``make``."""

    def body() -> T:
        tid = threading.get_native_id()
        own = os.open(f"/proc/self/task/{tid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if path is None:
                if _libc.unshare(CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
            else:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns {path}")
                finally:
                    os.close(fd)
            try:
                return make()
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:  # pragma: no cover - kernel refused
                    os.abort()  # a thread stuck in a container's netns must never run on
        finally:
            os.close(own)

    return _in_thread(body)


def socket_in_netns(path: Path, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket living in the namespace at ``path`` (usable from any thread)."""
    return _setns_and(path, lambda: socket.socket(family, kind, proto))


@contextlib.contextmanager
def _in_ns(path: Path) -> Iterator[Any]:
    sock = socket_in_netns(path, socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
    ipr = _iproute(fileno=sock.detach(), groups=0)
    try:
        yield ipr
    finally:
        ipr.close()


def create_netns(path: Path) -> None:
    """A new network namespace kept alive by a bind mount on ``path``, with ``lo`` up."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(exist_ok=True)

    def make() -> None:
        tid = threading.get_native_id()
        mount_all(
            [Mount(type="bind", source=f"/proc/self/task/{tid}/ns/net", options=("bind",))],
            path,
        )
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE) as s:
            ipr = _iproute(fileno=os.dup(s.fileno()), groups=0)
            try:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
            finally:
                ipr.close()

    try:
        _setns_and(None, make)
    except BaseException as exc:
        remove_netns(path)
        if isinstance(exc, errors.DockyardError):
            raise
        raise _translate(exc, f"create network namespace {path}") from exc


def remove_netns(path: Path) -> None:
    """Unmount and delete a namespace handle; missing handles are fine."""
    with contextlib.suppress(OSError, errors.DockyardError):
        unmount(path, detach=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def ensure_bridge(name: str, address: str, prefixlen: int, mtu: int = 1500) -> None:
    """Create bridge ``name`` with ``address/prefixlen`` and bring it up (idempotent)."""
    try:
        with _host() as ipr:
            found = ipr.link_lookup(ifname=name)
            if not found:
                ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
                found = ipr.link_lookup(ifname=name)
            index = found[0]
            have = {
                (a.get("address"), a.get("prefixlen"))
                for a in ipr.get_addr(index=index, family=socket.AF_INET)
            }
            if (address, prefixlen) not in have:
                for addr, plen in have:
                    ipr.addr("del", index=index, address=addr, prefixlen=plen)
                ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
            ipr.link("set", index=index, state="up")
    except (_netlink_error(), OSError) as exc:
        raise _translate(exc, f"create bridge {name}") from exc


def link_exists(name: str) -> bool:
    with _host() as ipr:
        return bool(ipr.link_lookup(ifname=name))


def delete_link(name: str) -> None:
    """Delete a host link by name; a missing one is fine."""
    try:
        with _host() as ipr:
            found = ipr.link_lookup(ifname=name)
            if found:
                ipr.link("del", index=found[0])
    except _netlink_error() as exc:
        if getattr(exc, "code", 0) not in (errno.ENODEV, errno.ENOENT):
            raise _translate(exc, f"delete link {name}") from exc


def enslave(host_name: str, bridge: str) -> None:
    """Put ``host_name`` on ``bridge`` (up) unless it is there: a recreated bridge starts empty."""
    try:
        with _host() as ipr:
            found = ipr.link_lookup(ifname=host_name)
            master = ipr.link_lookup(ifname=bridge)
            if not found:
                raise errors.NotFound(f"interface {host_name} is gone")
            if not master:
                raise errors.SystemError(f"bridge {bridge} does not exist")
            link = ipr.get_links(found[0])[0]
            if link.get_attr("IFLA_MASTER") != master[0]:
                ipr.link("set", index=found[0], master=master[0], state="up")
    except (_netlink_error(), OSError) as exc:
        raise _translate(exc, f"attach {host_name} to {bridge}") from exc


def links_with_master(bridge: str) -> list[str]:
    """Names of the interfaces enslaved to ``bridge``."""
    with _host() as ipr:
        found = ipr.link_lookup(ifname=bridge)
        if not found:
            return []
        return [
            str(link.get("ifname")) for link in ipr.get_links() if link.get("master") == found[0]
        ]


def add_veth(netns: Path, host_name: str, bridge: str, ifname: str, mtu: int = 1500) -> None:
    """A veth pair: ``host_name`` on ``bridge`` (up), its peer ``ifname`` inside ``netns``."""
    try:
        with _host() as ipr:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                ipr.link(
                    "add",
                    ifname=host_name,
                    kind="veth",
                    mtu=mtu,
                    peer={"ifname": ifname, "net_ns_fd": fd, "mtu": mtu},
                )
            finally:
                os.close(fd)
            index = ipr.link_lookup(ifname=host_name)[0]
            master = ipr.link_lookup(ifname=bridge)
            if not master:
                raise errors.SystemError(f"bridge {bridge} does not exist")
            ipr.link("set", index=index, master=master[0], state="up")
    except (_netlink_error(), OSError) as exc:
        with contextlib.suppress(errors.DockyardError, _netlink_error(), OSError):
            delete_link(host_name)
        raise _translate(exc, f"create veth {host_name}") from exc
    except BaseException:
        with contextlib.suppress(errors.DockyardError, _netlink_error(), OSError):
            delete_link(host_name)
        raise


def configure_container_iface(
    netns: Path,
    ifname: str,
    address: str,
    prefixlen: int,
    mac: str,
    gateway: str | None,
) -> None:
    """Inside ``netns``: MAC, address, up, and (for the first interface) the default route."""
    try:
        with _in_ns(netns) as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if not found:
                raise errors.SystemError(f"interface {ifname} is missing in {netns}")
            index = found[0]
            ipr.link("set", index=index, address=mac)
            ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
            ipr.link("set", index=index, state="up")
            if gateway:
                ipr.route("add", dst="0.0.0.0/0", gateway=gateway, oif=index)
    except (_netlink_error(), OSError) as exc:
        raise _translate(exc, f"configure {ifname} in {netns}") from exc


def delete_container_iface(netns: Path, ifname: str) -> None:
    """Remove ``ifname`` from inside ``netns`` (its host end goes with it)."""
    try:
        with _in_ns(netns) as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if found:
                ipr.link("del", index=found[0])
    except (_netlink_error(), OSError) as exc:
        raise _translate(exc, f"delete {ifname} in {netns}") from exc


def container_ifnames(netns: Path) -> list[str]:
    with _in_ns(netns) as ipr:
        return [str(link.get("ifname")) for link in ipr.get_links()]
