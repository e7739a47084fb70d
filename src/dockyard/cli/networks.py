"""``dockyard network …``: create, ls, inspect, rm, connect, disconnect, prune."""

from __future__ import annotations

import json
from typing import Any

import click

from dockyard.client import networks_api as api
from dockyard.errors import DockyardError

from .common import DockerCommand, StatusError, describe_error, get_client, require_args
from .formatting import Formatter, _Context
from .gofmt import TemplateError
from .volumes import _natural_key

__all__ = ["connect", "create", "disconnect", "inspect", "ls", "prune", "rm"]

_CTX = {"help_option_names": ["-h", "--help"]}


def _kv(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _subnet_holding(config: list[dict[str, Any]], address: str) -> dict[str, Any] | None:
    import ipaddress

    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return None
    for entry in config:
        try:
            if addr in ipaddress.ip_network(str(entry["Subnet"]), strict=False):
                return entry
        except ValueError:
            continue
    return None


@click.command(cls=DockerCommand, usage="create [OPTIONS] NETWORK", context_settings=_CTX)
@click.option("-d", "--driver", default="bridge", help="Driver to manage the Network")
@click.option("--subnet", multiple=True, help="Subnet in CIDR format")
@click.option("--gateway", multiple=True, help="IPv4 Gateway for the master subnet")
@click.option("--ip-range", multiple=True, help="Allocate container ip from a sub-range")
@click.option("--internal", is_flag=True, help="Restrict external access to the network")
@click.option("--attachable", is_flag=True, help="Enable manual container attachment")
@click.option("-o", "--opt", multiple=True, help="Set driver specific options")
@click.option("--label", multiple=True, help="Set metadata on a network")
@click.option("--aux-address", multiple=True, help="Auxiliary IPv4 addresses used by driver")
@click.option("--ipam-driver", default="default", help="IP Address Management Driver")
@click.option("--ipam-opt", multiple=True, help="Set IPAM driver specific options")
@click.option("--ipv6", is_flag=True, help="Enable or disable IPv6 networking")
@click.argument("args", nargs=-1)
@click.pass_context
def create(
    ctx: click.Context,
    driver: str,
    subnet: tuple[str, ...],
    gateway: tuple[str, ...],
    ip_range: tuple[str, ...],
    internal: bool,
    attachable: bool,
    opt: tuple[str, ...],
    label: tuple[str, ...],
    aux_address: tuple[str, ...],
    ipam_driver: str,
    ipam_opt: tuple[str, ...],
    ipv6: bool,
    args: tuple[str, ...],
) -> None:
    """Create a network."""
    require_args(ctx, args, exact=1)
    if len(subnet) < len(gateway) or len(subnet) < len(ip_range):
        raise StatusError(1, "every ip-range or gateway must have a corresponding subnet")
    config: list[dict[str, Any]] = []
    for i, sub in enumerate(subnet):
        entry: dict[str, Any] = {"Subnet": sub}
        if i < len(ip_range):
            entry["IPRange"] = ip_range[i]
        if i < len(gateway):
            entry["Gateway"] = gateway[i]
        config.append(entry)
    for name, address in _kv(aux_address).items():
        home = _subnet_holding(config, address)
        if home is None:
            raise StatusError(1, f"no matching subnet for aux-address {address}")
        home.setdefault("AuxiliaryAddresses", {})[name] = address
    body = {
        "Name": args[0],
        "Driver": driver,
        "Scope": "",
        "EnableIPv6": ipv6,
        "IPAM": {"Driver": ipam_driver, "Options": _kv(ipam_opt), "Config": config},
        "Internal": internal,
        "Attachable": attachable,
        "Ingress": False,
        "ConfigOnly": False,
        "ConfigFrom": None,
        "Options": _kv(opt),
        "Labels": _kv(label),
    }
    click.echo(api.network_create(get_client(ctx), body)["Id"])


NETWORK_HEADERS: dict[str, str] = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv4": "IPV4",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}
DEFAULT_NETWORK_FORMAT = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"


class NetworkContext(_Context):
    """One ``GET /networks`` entry as ``network ls`` templates see it (docker's
    ``networkContext``)."""

    go_type = "*formatter.networkContext"
    fields = ("CreatedAt", "Driver", "ID", "IPv4", "IPv6", "Internal", "Labels", "Name", "Scope")

    def __init__(self, network: dict[str, Any], *, trunc: bool) -> None:
        super().__init__()
        self.n = network
        self.trunc = trunc

    def f_ID(self) -> str:
        ident = str(self.n.get("Id") or "")
        return ident[:12] if self.trunc else ident

    def f_Name(self) -> str:
        return str(self.n.get("Name") or "")

    def f_Driver(self) -> str:
        return str(self.n.get("Driver") or "")

    def f_Scope(self) -> str:
        return str(self.n.get("Scope") or "")

    def f_IPv4(self) -> str:
        return "true" if self.n.get("EnableIPv4") else "false"  # API 1.47+; absent before

    def f_IPv6(self) -> str:
        return "true" if self.n.get("EnableIPv6") else "false"

    def f_Internal(self) -> str:
        return "true" if self.n.get("Internal") else "false"

    def f_Labels(self) -> str:
        labels = self.n.get("Labels") or {}
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

    def m_Label(self, name: str) -> str:
        return str((self.n.get("Labels") or {}).get(name, ""))

    def f_CreatedAt(self) -> str:
        return go_time_rfc3339(str(self.n.get("Created") or ""))


def go_time_rfc3339(text: str) -> str:
    """Go's ``time.Time.String()`` of an RFC 3339 UTC time: ``2024-01-01 10:00:00.5 +0000 UTC``."""
    if not text.endswith("Z") or "T" not in text:
        return text
    date, _, clock = text[:-1].partition("T")
    whole, _, frac = clock.partition(".")
    frac = frac.rstrip("0")
    return f"{date} {whole}{'.' + frac if frac else ''} +0000 UTC"


@click.command(cls=DockerCommand, usage="ls [OPTIONS]", context_settings=_CTX)
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output")
@click.option("-f", "--filter", "filters", multiple=True, help="Provide filter values")
@click.option("--format", "fmt", default="", help="Format output using a custom template")
@click.argument("args", nargs=-1)
@click.pass_context
def ls(
    ctx: click.Context,
    quiet: bool,
    no_trunc: bool,
    filters: tuple[str, ...],
    fmt: str,
    args: tuple[str, ...],
) -> None:
    """List networks."""
    require_args(ctx, args, none=True)
    wanted: dict[str, list[str]] = {}
    for f in filters:
        key, _, value = f.partition("=")
        wanted.setdefault(key, []).append(value)
    nets = sorted(
        api.network_list(get_client(ctx), wanted or None),
        key=lambda n: _natural_key(str(n["Name"])),
    )
    if fmt in ("", "table"):
        fmt = "{{.ID}}" if quiet else DEFAULT_NETWORK_FORMAT
    try:
        output = Formatter(fmt, NETWORK_HEADERS).render(
            NetworkContext(n, trunc=not no_trunc) for n in nets
        )
    except TemplateError as exc:
        raise StatusError(1, str(exc)) from exc
    click.echo(output, nl=False)


@click.command(
    cls=DockerCommand, usage="inspect [OPTIONS] NETWORK [NETWORK...]", context_settings=_CTX
)
@click.option("-f", "--format", "fmt", default=None, help="Format output using a Go template")
@click.argument("args", nargs=-1)
@click.pass_context
def inspect(ctx: click.Context, fmt: str | None, args: tuple[str, ...]) -> None:
    """Display detailed information on one or more networks."""
    require_args(ctx, args, minimum=1)
    client = get_client(ctx)
    found: list[Any] = []
    errors: list[str] = []
    for name in args:
        try:
            found.append(api.network_inspect(client, name))
        except DockyardError as exc:
            errors.append(describe_error(exc))
    if fmt:
        from . import gotemplate

        tmpl = gotemplate.parse(fmt)
        for item in found:
            click.echo(tmpl.execute(item))
    else:
        click.echo(json.dumps(found, indent=4))
    if errors:
        raise StatusError(1, "\n".join(errors))


@click.command(cls=DockerCommand, usage="rm NETWORK [NETWORK...]", context_settings=_CTX)
@click.option("-f", "--force", is_flag=True, help="Do not error if the network does not exist")
@click.argument("args", nargs=-1)
@click.pass_context
def rm(ctx: click.Context, force: bool, args: tuple[str, ...]) -> None:
    """Remove one or more networks."""
    require_args(ctx, args, minimum=1)
    client = get_client(ctx)
    errors: list[str] = []
    for name in args:
        try:
            api.network_remove(client, name)
            click.echo(name)
        except DockyardError as exc:
            if not (force and "not found" in exc.message):
                errors.append(describe_error(exc))
    if errors:
        raise StatusError(1, "\n".join(errors))


@click.command(
    cls=DockerCommand, usage="connect [OPTIONS] NETWORK CONTAINER", context_settings=_CTX
)
@click.option("--alias", multiple=True, help="Add network-scoped alias for the container")
@click.option("--ip", default="", help="IPv4 address (e.g., 172.30.100.104)")
@click.argument("args", nargs=-1)
@click.pass_context
def connect(ctx: click.Context, alias: tuple[str, ...], ip: str, args: tuple[str, ...]) -> None:
    """Connect a container to a network."""
    require_args(ctx, args, exact=2)
    endpoint: dict[str, Any] = {"Aliases": list(alias) or None}
    if ip:
        endpoint["IPAMConfig"] = {"IPv4Address": ip}
    api.network_connect(get_client(ctx), args[0], args[1], endpoint)


@click.command(
    cls=DockerCommand, usage="disconnect [OPTIONS] NETWORK CONTAINER", context_settings=_CTX
)
@click.option(
    "-f", "--force", is_flag=True, help="Force the container to disconnect from a network"
)
@click.argument("args", nargs=-1)
@click.pass_context
def disconnect(ctx: click.Context, force: bool, args: tuple[str, ...]) -> None:
    """Disconnect a container from a network."""
    require_args(ctx, args, exact=2)
    api.network_disconnect(get_client(ctx), args[0], args[1], force)


@click.command(cls=DockerCommand, usage="prune [OPTIONS]", context_settings=_CTX)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, help="Provide filter values")
@click.pass_context
def prune(ctx: click.Context, force: bool, filters: tuple[str, ...]) -> None:
    """Remove all unused networks."""
    if not force and not click.confirm(
        "WARNING! This will remove all custom networks not used by at least one container.\n"
        "Are you sure you want to continue?",
        default=False,
    ):
        return
    wanted: dict[str, list[str]] = {}
    for f in filters:
        key, _, value = f.partition("=")
        wanted.setdefault(key, []).append(value)
    out = api.network_prune(get_client(ctx), wanted or None)
    deleted = out.get("NetworksDeleted") or []
    if deleted:
        click.echo("Deleted Networks:")
        for name in deleted:
            click.echo(name)


@click.command(
    cls=DockerCommand, usage="port CONTAINER [PRIVATE_PORT[/PROTO]]", context_settings=_CTX
)
@click.argument("args", nargs=-1)
@click.pass_context
def port(ctx: click.Context, args: tuple[str, ...]) -> None:
    """List port mappings or a specific mapping for the container."""
    require_args(ctx, args, minimum=1)
    info = get_client(ctx).container_inspect(args[0])
    ports: dict[str, Any] = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if len(args) > 1:
        key = args[1] if "/" in args[1] else f"{args[1]}/tcp"
        bindings = ports.get(key)
        if not bindings:
            raise StatusError(1, f"Error: No public port '{key}' published for {args[0]}")
        for b in bindings:
            click.echo(f"{b['HostIp']}:{b['HostPort']}")
        return

    def order(k: str) -> tuple[int, str]:
        number, _, proto = k.partition("/")
        return (int(number) if number.isdigit() else 0, proto)

    for key in sorted(ports, key=order):
        for b in ports[key] or []:
            click.echo(f"{key} -> {b['HostIp']}:{b['HostPort']}")
