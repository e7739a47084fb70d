"""``version``, ``info`` and ``inspect`` (generic, ``container inspect``, ``image inspect``)."""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import click

from dockyard.client import API_VERSION, Client
from dockyard.errors import DockyardError, NotFound

from . import gotemplate
from .common import CLIState, DockerCommand, StatusError, describe_error, get_client, require_args
from .formatting import bytes_size, json_compact, json_indent, tabwrite
from .gotemplate import GoStruct, TemplateError

__all__ = ["container_inspect", "image_inspect", "info", "inspect", "version"]

_CTX = {"help_option_names": ["-h", "--help"]}

CLIENT_VERSION = "0.1.0"

# docker's defaultVersionTemplate; "Go version" of the client is our Python's.
VERSION_TEMPLATE = """{{with .Client -}}
Client:{{if ne .Platform nil}}{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}{{end}}
 Version:\t{{.Version}}
 API version:\t{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from \
{{.DefaultAPIVersion}}){{end}}
 Python version:\t{{.GoVersion}}
 Git commit:\t{{.GitCommit}}
 Built:\t{{.BuildTime}}
 OS/Arch:\t{{.Os}}/{{.Arch}}
 Context:\t{{.Context}}
{{- end}}

{{- if ne .Server nil}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:\t{{.Version}}
  API version:\t{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:\t{{index .Details "GoVersion"}}
  Git commit:\t{{index .Details "GitCommit"}}
  Built:\t{{index .Details "BuildTime"}}
  OS/Arch:\t{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:\t{{index .Details "Experimental"}}
  {{- else }}
  Version:\t{{$component.Version}}
  {{- $detailsOrder := getDetailsOrder $component}}
  {{- range $key := $detailsOrder}}
  {{$key}}:\t{{index $component.Details $key}}
   {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}"""

_CLIENT_OMITEMPTY = frozenset(
    [
        "Platform",
        "Version",
        "ApiVersion",
        "DefaultAPIVersion",
        "GitCommit",
        "GoVersion",
        "Os",
        "Arch",
        "BuildTime",
    ]
)


def reformat_date(value: str) -> str:
    """An RFC 3339 build time becomes Go's ``time.ANSIC`` (``Mon Jan  2 15:04:05 2006``)."""
    text = value.replace("Z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return value
    return dt.strftime("%a %b ") + f"{dt.day:>2}" + dt.strftime(" %H:%M:%S %Y")


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def client_version(api_version: str) -> GoStruct:
    """The client half of ``version`` (docker's ``clientVersion``)."""
    return GoStruct(
        {
            "Platform": None,
            "Version": CLIENT_VERSION,
            "ApiVersion": api_version,
            "DefaultAPIVersion": API_VERSION,
            "GitCommit": "",
            "GoVersion": f"python{platform.python_version()}",
            "Os": "linux" if sys.platform.startswith("linux") else sys.platform,
            "Arch": _arch(),
            "BuildTime": "",
            "Context": "default",
        },
        "system.clientVersion",
        omitempty=_CLIENT_OMITEMPTY,
    )


def server_version(server: dict[str, Any]) -> GoStruct:
    """The daemon's ``/version`` with an ``Engine`` component guaranteed (as docker)."""
    components = list(server.get("Components") or [])
    found = False
    for component in components:
        if component.get("Name") == "Engine":
            found = True
            details = component.get("Details") or {}
            if "BuildTime" in details:
                details["BuildTime"] = reformat_date(str(details["BuildTime"]))
    if not found:
        components.append(
            {
                "Name": "Engine",
                "Version": server.get("Version", ""),
                "Details": {
                    "ApiVersion": server.get("ApiVersion", ""),
                    "MinAPIVersion": server.get("MinAPIVersion", ""),
                    "GitCommit": server.get("GitCommit", ""),
                    "GoVersion": server.get("GoVersion", ""),
                    "Os": server.get("Os", ""),
                    "Arch": server.get("Arch", ""),
                    "BuildTime": reformat_date(str(server.get("BuildTime", ""))),
                    "Experimental": "true" if server.get("Experimental") else "false",
                },
            }
        )
    data = dict(server)
    data["Components"] = components
    if not isinstance(data.get("Platform"), dict):
        data["Platform"] = {"Name": ""}
    return GoStruct(data, "*types.Version")


def _details_order(component: Any) -> list[str]:
    details = component.get("Details") if isinstance(component, dict) else None
    return sorted(details or {})


@click.command(
    cls=DockerCommand,
    usage="version [OPTIONS]",
    context_settings=_CTX,
    short_help="Show the Dockyard version information",
)
@click.option("-f", "--format", "fmt", default="", help="Format output using a custom template")
@click.argument("args", nargs=-1)
@click.pass_context
def version(ctx: click.Context, fmt: str, args: tuple[str, ...]) -> None:
    """Show the Dockyard version information."""
    require_args(ctx, args, none=True)
    source = VERSION_TEMPLATE if not fmt else ("{{json .}}" if fmt == "json" else fmt)
    try:
        tmpl = gotemplate.parse(source, {"getDetailsOrder": _details_order}, name="version")
    except TemplateError as exc:
        raise StatusError(64, f"template parsing error: {exc}") from exc
    client = get_client(ctx)
    error: DockyardError | None = None
    server: GoStruct | None = None
    api_version = ""
    try:
        api_version = client.api_version
        server = server_version(client.version())
    except DockyardError as exc:
        error = exc
    data = GoStruct({"Client": client_version(api_version), "Server": server}, "system.versionInfo")
    out: list[str] = []
    template_error: TemplateError | None = None
    try:
        tmpl.execute_into(out, data, typed=True)
    except TemplateError as exc:
        template_error = exc
    sys.stdout.write(tabwrite("".join(out) + "\n", minwidth=20, padding=1))
    sys.stdout.flush()
    if error is not None:
        raise error
    if template_error is not None:
        raise StatusError(1, str(template_error))


# --------------------------------------------------------------------------- info


def _client_info_lines(debug: bool) -> list[str]:
    return [
        "Client:",
        f" Version:    {CLIENT_VERSION}",
        " Context:    default",
        f" Debug Mode: {_go_bool(debug)}",
    ]


def _go_bool(value: Any) -> str:
    return "true" if value else "false"


def server_info_lines(info: dict[str, Any], debug: bool = False) -> tuple[list[str], list[str]]:
    """docker's ``prettyPrintServerInfo``: the ``Server:`` section lines and any errors."""
    lines: list[str] = []
    errors: list[str] = []

    def line(label: str, value: Any) -> None:
        if isinstance(value, bool):
            value = _go_bool(value)
        lines.append(f"{label} {value}")

    def nonempty(label: str, value: Any) -> None:
        if value not in (None, ""):
            line(label, value)

    line(" Containers:", info.get("Containers", 0))
    line("  Running:", info.get("ContainersRunning", 0))
    line("  Paused:", info.get("ContainersPaused", 0))
    line("  Stopped:", info.get("ContainersStopped", 0))
    line(" Images:", info.get("Images", 0))
    nonempty(" Server Version:", info.get("ServerVersion"))
    nonempty(" Storage Driver:", info.get("Driver"))
    for pair in info.get("DriverStatus") or []:
        lines.append(f"  {pair[0]}: {pair[1]}")
    for pair in info.get("SystemStatus") or []:
        lines.append(f" {pair[0]}: {pair[1]}")
    nonempty(" Logging Driver:", info.get("LoggingDriver"))
    nonempty(" Cgroup Driver:", info.get("CgroupDriver"))
    nonempty(" Cgroup Version:", info.get("CgroupVersion"))
    plugins = info.get("Plugins") or {}
    lines.append(" Plugins:")
    line("  Volume:", " ".join(plugins.get("Volume") or []))
    line("  Network:", " ".join(plugins.get("Network") or []))
    if plugins.get("Authorization"):
        line("  Authorization:", " ".join(plugins["Authorization"]))
    line("  Log:", " ".join(plugins.get("Log") or []))
    if info.get("CDISpecDirs"):
        lines.append(" CDI spec directories:")
        lines.extend(f"  {d}" for d in info["CDISpecDirs"])
    swarm = info.get("Swarm") or {}
    line(" Swarm:", swarm.get("LocalNodeState", ""))
    if swarm.get("LocalNodeState") not in (None, "", "inactive", "locked"):
        line("  NodeID:", swarm.get("NodeID", ""))
        if swarm.get("Error"):
            line("  Error:", swarm["Error"])
        line("  Is Manager:", bool(swarm.get("ControlAvailable")))
        line("  Node Address:", swarm.get("NodeAddr", ""))
    runtimes = info.get("Runtimes") or {}
    if runtimes:
        line(" Runtimes:", " ".join(sorted(runtimes)))
        line(" Default Runtime:", info.get("DefaultRuntime", ""))
    if info.get("OSType") == "linux":
        line(" Init Binary:", info.get("InitBinary", ""))
        line(" containerd version:", (info.get("ContainerdCommit") or {}).get("ID", ""))
        line(" runc version:", (info.get("RuncCommit") or {}).get("ID", ""))
        line(" init version:", (info.get("InitCommit") or {}).get("ID", ""))
        options = info.get("SecurityOptions") or []
        if options:
            decoded = _decode_security_options(options)
            if decoded is None:
                errors.append("invalid security option: expected name=value pairs")
            else:
                lines.append(" Security Options:")
                for name, opts in decoded:
                    lines.append(f"  {name}")
                    for key, value in opts:
                        if key == "profile":
                            lines.append(f"   Profile: {value}")
    nonempty(" Kernel Version:", info.get("KernelVersion"))
    nonempty(" Operating System:", info.get("OperatingSystem"))
    nonempty(" OSType:", info.get("OSType"))
    nonempty(" Architecture:", info.get("Architecture"))
    line(" CPUs:", info.get("NCPU", 0))
    line(" Total Memory:", bytes_size(float(info.get("MemTotal") or 0)))
    nonempty(" Name:", info.get("Name"))
    nonempty(" ID:", info.get("ID"))
    line(" Docker Root Dir:", info.get("DockerRootDir", ""))
    line(" Debug Mode:", bool(info.get("Debug")))
    if info.get("Debug") or debug:
        line("  File Descriptors:", info.get("NFd", 0))
        line("  Goroutines:", info.get("NGoroutines", 0))
        line("  System Time:", info.get("SystemTime", ""))
        line("  EventsListeners:", info.get("NEventsListener", 0))
    nonempty(" HTTP Proxy:", info.get("HttpProxy"))
    nonempty(" HTTPS Proxy:", info.get("HttpsProxy"))
    nonempty(" No Proxy:", info.get("NoProxy"))
    if info.get("Labels"):
        lines.append(" Labels:")
        lines.extend(f"  {label}" for label in info["Labels"])
    line(" Experimental:", bool(info.get("ExperimentalBuild")))
    registry = info.get("RegistryConfig") or {}
    cidrs = registry.get("InsecureRegistryCIDRs") or []
    index_configs = registry.get("IndexConfigs") or {}
    if registry and (cidrs or index_configs):
        lines.append(" Insecure Registries:")
        for config in index_configs.values():
            if not config.get("Secure"):
                lines.append(f"  {config.get('Name', '')}")
        lines.extend(f"  {cidr}" for cidr in cidrs)
    if registry.get("Mirrors"):
        lines.append(" Registry Mirrors:")
        lines.extend(f"  {mirror}" for mirror in registry["Mirrors"])
    line(" Live Restore Enabled:", bool(info.get("LiveRestoreEnabled")))
    if info.get("ProductLicense"):
        line(" Product License:", info["ProductLicense"])
    pools = info.get("DefaultAddressPools") or []
    if pools:
        lines.append(" Default Address Pools:")
        for pool in pools:
            lines.append(f"   Base: {pool.get('Base', '')}, Size: {pool.get('Size', 0)}")
    lines.append("")
    return lines, errors


def _decode_security_options(
    options: Sequence[str],
) -> list[tuple[str, list[tuple[str, str]]]] | None:
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for option in options:
        name = ""
        pairs: list[tuple[str, str]] = []
        for part in option.split(","):
            key, sep, value = part.partition("=")
            if not sep:
                return None
            if key == "name":
                name = value
            else:
                pairs.append((key, value))
        out.append((name, pairs))
    return out


def _client_info(debug: bool) -> GoStruct:
    version_fields = dict(client_version(""))
    version_fields.pop("Platform", None)
    version_fields.pop("ApiVersion", None)
    data = {"Debug": debug, **version_fields, "Plugins": [], "Warnings": None}
    return GoStruct(data, "*system.clientInfo", omitempty=_CLIENT_OMITEMPTY)


@click.command(
    cls=DockerCommand,
    usage="info [OPTIONS]",
    context_settings=_CTX,
    short_help="Display system-wide information",
)
@click.option("-f", "--format", "fmt", default="", help="Format output using a custom template")
@click.argument("args", nargs=-1)
@click.pass_context
def info(ctx: click.Context, fmt: str, args: tuple[str, ...]) -> None:
    """Display system-wide information."""
    require_args(ctx, args, none=True)
    state = ctx.find_object(CLIState)
    debug = state.debug if state is not None else False
    client = get_client(ctx)
    if fmt:
        _info_formatted(client, fmt, debug)
        return
    out = sys.stdout
    out.write("\n".join(_client_info_lines(debug)) + "\n\nServer:\n")
    out.flush()
    try:
        data = client.info()
    except DockyardError as exc:
        sys.stderr.write(f"ERROR: {describe_error(exc)}\n")
        raise StatusError(1, "errors pretty printing info") from exc
    lines, errors = server_info_lines(data, debug)
    out.write("\n".join(lines) + "\n")
    out.flush()
    for warning in data.get("Warnings") or []:
        sys.stderr.write(f"{warning}\n")
    if errors:
        for error in errors:
            sys.stderr.write(f"ERROR: {error}\n")
        raise StatusError(1, "errors pretty printing info")


def _info_formatted(client: Client, fmt: str, debug: bool) -> None:
    source = "{{json .}}" if fmt == "json" else fmt
    try:
        tmpl = gotemplate.parse(source)
    except TemplateError as exc:
        raise StatusError(1, f"template parsing error: {exc}") from exc
    data: dict[str, Any]
    try:
        data = client.info()
    except DockyardError as exc:
        sys.stderr.write(describe_error(exc) + "\n")
        data = {"ServerErrors": [describe_error(exc)]}
    data["ClientInfo"] = _client_info(debug)
    out: list[str] = []
    try:
        tmpl.execute_into(out, GoStruct(data, "system.dockerInfo"), typed=True)
    except TemplateError as exc:
        sys.stdout.write("".join(out) + "\n")
        raise StatusError(1, str(exc)) from exc
    sys.stdout.write("".join(out) + "\n")


# --------------------------------------------------------------------------- inspect

ALL_TYPES = (
    "config",
    "container",
    "image",
    "network",
    "node",
    "plugin",
    "secret",
    "service",
    "task",
    "volume",
)


class _NoSuchObject(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"Error: No such object: {name}")


def _getter(client: Client, kind: str, size: bool) -> Callable[[str], tuple[Any, bytes]]:
    if kind == "container":
        return lambda name: client.container_inspect_raw(name, size=size)
    if kind == "image":
        return client.image_inspect_raw
    if kind == "network":
        return client.network_inspect_raw
    if kind == "volume":
        return client.volume_inspect_raw
    if kind == "plugin":
        return client.plugin_inspect_raw
    raise NotFound(f"Error: No such {kind}")


def _inspect_any(client: Client, name: str, size: bool) -> tuple[Any, bytes]:
    """Try container, image, network, volume, (swarm state), plugin, as docker does."""
    for kind in ("container", "image", "network", "volume", "plugin"):
        if kind == "plugin":
            # docker asks for the swarm state before the swarm-only types
            try:
                client.info()
            except DockyardError:
                pass
        try:
            return _getter(client, kind, size)(name)
        except NotFound:
            continue
    raise _NoSuchObject(name)


def render_inspect(tmpl: gotemplate.Template, value: Any) -> str:
    """docker's ``TemplateInspector``: run on the typed object; on any error run again on the
    raw map with ``missingkey=error`` and report that run's error."""
    try:
        return tmpl.execute(value, typed=True)
    except TemplateError:
        pass
    try:
        return tmpl.execute(value, strict=True)
    except TemplateError as exc:
        raise TemplateError(f"template parsing error: {exc}") from exc


def _run_inspect(
    ctx: click.Context, names: Sequence[str], fmt: str, kind: str | None, size: bool
) -> None:
    client = get_client(ctx)
    tmpl: gotemplate.Template | None = None
    if fmt and fmt != "json":
        try:
            tmpl = gotemplate.parse(fmt)
        except TemplateError as exc:
            raise StatusError(64, f"template parsing error: {exc}") from exc
    raws: list[str] = []
    rendered: list[str] = []
    errors: list[str] = []
    for name in names:
        try:
            if kind is None:
                value, raw = _inspect_any(client, name, size)
            else:
                value, raw = _getter(client, kind, size)(name)
        except _NoSuchObject as exc:
            errors.append(str(exc))
            continue
        except DockyardError as exc:
            errors.append(describe_error(exc))
            continue
        if tmpl is None:
            raws.append(raw.decode("utf-8", "replace").strip())
            continue
        try:
            rendered.append(render_inspect(tmpl, value) + "\n")
        except TemplateError as exc:
            errors.append(str(exc))
    if tmpl is not None:
        sys.stdout.write("".join(rendered) or "\n")
    elif not raws:
        sys.stdout.write("[]\n")
    elif fmt == "json":
        sys.stdout.write(json_compact("[" + ",".join(raws) + "]") + "\n")
    else:
        sys.stdout.write(json_indent("[" + ",".join(raws) + "]") + "\n")
    sys.stdout.flush()
    if errors:
        raise StatusError(1, "\n".join(errors))


@click.command(
    cls=DockerCommand,
    usage="inspect [OPTIONS] NAME|ID [NAME|ID...]",
    context_settings=_CTX,
    short_help="Return low-level information on Dockyard objects",
)
@click.option("-f", "--format", "fmt", default="", help="Format output using a custom template")
@click.option(
    "-s", "--size", is_flag=True, help="Display total file sizes if the type is container"
)
@click.option("--type", "kind", default="", help="Only inspect objects of the given type")
@click.argument("args", nargs=-1)
@click.pass_context
def inspect(ctx: click.Context, fmt: str, size: bool, kind: str, args: tuple[str, ...]) -> None:
    """Return low-level information on Dockyard objects."""
    require_args(ctx, args, minimum=1)
    if kind and kind not in ALL_TYPES:
        choices = ", ".join(f'"{t}"' for t in ALL_TYPES)
        raise StatusError(1, f'unknown type: "{kind}": must be one of {choices}')
    _run_inspect(ctx, args, fmt, kind or None, size)


@click.command(
    "inspect",
    cls=DockerCommand,
    usage="inspect [OPTIONS] CONTAINER [CONTAINER...]",
    context_settings=_CTX,
    short_help="Display detailed information on one or more containers",
)
@click.option("-f", "--format", "fmt", default="", help="Format output using a custom template")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes")
@click.argument("args", nargs=-1)
@click.pass_context
def container_inspect(ctx: click.Context, fmt: str, size: bool, args: tuple[str, ...]) -> None:
    """Display detailed information on one or more containers."""
    require_args(ctx, args, minimum=1)
    _run_inspect(ctx, args, fmt, "container", size)


@click.command(
    "inspect",
    cls=DockerCommand,
    usage="inspect [OPTIONS] IMAGE [IMAGE...]",
    context_settings=_CTX,
    short_help="Display detailed information on one or more images",
)
@click.option("-f", "--format", "fmt", default="", help="Format output using a custom template")
@click.argument("args", nargs=-1)
@click.pass_context
def image_inspect(ctx: click.Context, fmt: str, args: tuple[str, ...]) -> None:
    """Display detailed information on one or more images."""
    require_args(ctx, args, minimum=1)
    _run_inspect(ctx, args, fmt, "image", False)
