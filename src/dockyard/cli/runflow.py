"""``run`` and ``create`` without click: their flags, the create body, the run flow.

``main`` parses these commands with ``flagspec`` when it can and calls ``run_command`` or
``create_command`` directly; the click commands in ``containers`` call the same functions
(and give docker's usage errors when the fast parse declines). Only light modules are
imported here: this is the start-up path of every ``dockyard run``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from dockyard.client.streams import StreamError
from dockyard.errors import DockyardError, InvalidArgument, NotFound

from .base import PROG, CLIState, StatusError, describe_error
from .flagspec import BOOL, INT, LIST, Flag, check_extra_host
from .progress import JSONMessageError
from .streaming import (
    DetachRequested,
    SignalProxy,
    binary_stdio,
    is_terminal,
    parse_detach_keys,
    pump,
    raw_terminal,
    tty_size,
)

TYPE_CHECKING = False  # not typing's: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from dockyard.client import Client, HijackedStream, WaitHandle

__all__ = [
    "CREATE_FLAGS",
    "CREATE_USAGE",
    "RUN_FLAGS",
    "RUN_USAGE",
    "OutputThread",
    "body_from_options",
    "create_command",
    "create_container",
    "pull_for_create",
    "run_command",
    "run_error",
    "wait_status",
    "write_err",
]

RUN_USAGE = "run [OPTIONS] IMAGE [COMMAND] [ARG...]"
CREATE_USAGE = "create [OPTIONS] IMAGE [COMMAND] [ARG...]"

CREATE_FLAGS: tuple[Flag, ...] = (
    Flag(
        "--add-host",
        dest="add_host",
        kind=LIST,
        help="Add a custom host-to-IP mapping (host:ip)",
        check=check_extra_host,
    ),
    Flag("--cap-add", dest="cap_add", kind=LIST, help="Add Linux capabilities"),
    Flag("--cap-drop", dest="cap_drop", kind=LIST, help="Drop Linux capabilities"),
    Flag(
        "--blkio-weight",
        dest="blkio_weight",
        kind=INT,
        default=0,
        help="Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)",
    ),
    Flag(
        "-c",
        "--cpu-shares",
        dest="cpu_shares",
        kind=INT,
        default=0,
        help="CPU shares (relative weight)",
    ),
    Flag(
        "--cpu-period",
        dest="cpu_period",
        kind=INT,
        default=0,
        help="Limit CPU CFS (Completely Fair Scheduler) period",
    ),
    Flag(
        "--cpu-quota",
        dest="cpu_quota",
        kind=INT,
        default=0,
        help="Limit CPU CFS (Completely Fair Scheduler) quota",
    ),
    Flag("--cpus", dest="cpus", default="", help="Number of CPUs"),
    Flag(
        "--cpuset-cpus",
        dest="cpuset_cpus",
        default="",
        help="CPUs in which to allow execution (0-3, 0,1)",
    ),
    Flag(
        "--cpuset-mems",
        dest="cpuset_mems",
        default="",
        help="MEMs in which to allow execution (0-3, 0,1)",
    ),
    Flag("--device", dest="device", kind=LIST, help="Add a host device to the container"),
    Flag(
        "--device-cgroup-rule",
        dest="device_cgroup_rule",
        kind=LIST,
        help="Add a rule to the cgroup allowed devices list",
    ),
    Flag("--dns", dest="dns", kind=LIST, help="Set custom DNS servers"),
    Flag("--dns-option", dest="dns_option", kind=LIST, help="Set DNS options"),
    Flag("--dns-search", dest="dns_search", kind=LIST, help="Set custom DNS search domains"),
    Flag("--entrypoint", dest="entrypoint", help="Overwrite the default ENTRYPOINT of the image"),
    Flag("-e", "--env", dest="env", kind=LIST, help="Set environment variables"),
    Flag("--env-file", dest="env_file", kind=LIST, help="Read in a file of environment variables"),
    Flag("--expose", dest="expose", kind=LIST, help="Expose a port or a range of ports"),
    Flag("--health-cmd", dest="health_cmd", default="", help="Command to run to check health"),
    Flag(
        "--health-interval",
        dest="health_interval",
        default="",
        help="Time between running the check (ms|s|m|h) (default 0s)",
    ),
    Flag(
        "--health-retries",
        dest="health_retries",
        kind=INT,
        default=0,
        help="Consecutive failures needed to report unhealthy",
    ),
    Flag(
        "--health-start-interval",
        dest="health_start_interval",
        default="",
        help="Time between running the check during the start period (ms|s|m|h) (default 0s)",
    ),
    Flag(
        "--health-start-period",
        dest="health_start_period",
        default="",
        help="Start period for the container to initialize before starting health-retries "
        "countdown (ms|s|m|h) (default 0s)",
    ),
    Flag(
        "--health-timeout",
        dest="health_timeout",
        default="",
        help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)",
    ),
    Flag("--group-add", dest="group_add", kind=LIST, help="Add additional groups to join"),
    Flag("-h", "--hostname", dest="hostname", default="", help="Container host name"),
    Flag("--init", dest="init", kind=BOOL, help="Run an init inside the container"),
    Flag("--ipc", dest="ipc", default="", help="IPC mode to use"),
    Flag(
        "-i",
        "--interactive",
        dest="interactive",
        kind=BOOL,
        help="Keep STDIN open even if not attached",
    ),
    Flag("-l", "--label", dest="label", kind=LIST, help="Set meta data on a container"),
    Flag("--log-driver", dest="log_driver", default="", help="Logging driver for the container"),
    Flag("--log-opt", dest="log_opt", kind=LIST, help="Log driver options"),
    Flag("-m", "--memory", dest="memory", default="", help="Memory limit"),
    Flag("--memory-reservation", dest="memory_reservation", default="", help="Memory soft limit"),
    Flag(
        "--memory-swap",
        dest="memory_swap",
        default="",
        help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap",
    ),
    Flag("--mount", dest="mount", kind=LIST, help="Attach a filesystem mount to the container"),
    Flag("--name", dest="name", help="Assign a name to the container"),
    Flag(
        "--network",
        "--net",
        dest="network",
        default="default",
        help="Connect a container to a network",
    ),
    Flag(
        "--network-alias",
        dest="network_alias",
        kind=LIST,
        help="Add network-scoped alias for the container",
    ),
    Flag("--ip", dest="ip", default="", help="IPv4 address (e.g., 172.30.100.104)"),
    Flag(
        "--no-healthcheck",
        dest="no_healthcheck",
        kind=BOOL,
        help="Disable any container-specified HEALTHCHECK",
    ),
    Flag("--pid", dest="pid", default="", help="PID namespace to use"),
    Flag(
        "--pids-limit",
        dest="pids_limit",
        kind=INT,
        help="Tune container pids limit (set -1 for unlimited)",
    ),
    Flag("--platform", dest="platform", help="Set platform if server is multi-platform capable"),
    Flag(
        "--privileged",
        dest="privileged",
        kind=BOOL,
        help="Give extended privileges to this container",
    ),
    Flag(
        "-p",
        "--publish",
        dest="publish",
        kind=LIST,
        help="Publish a container's port(s) to the host",
    ),
    Flag(
        "-P",
        "--publish-all",
        dest="publish_all",
        kind=BOOL,
        help="Publish all exposed ports to random ports",
    ),
    Flag(
        "--pull",
        dest="pull",
        default="missing",
        help='Pull image before running ("always", "missing", "never")',
    ),
    Flag("-q", "--quiet", dest="quiet", kind=BOOL, help="Suppress the pull output"),
    Flag(
        "--read-only",
        dest="read_only",
        kind=BOOL,
        help="Mount the container's root filesystem as read only",
    ),
    Flag(
        "--restart",
        dest="restart",
        default="no",
        help="Restart policy to apply when a container exits",
    ),
    Flag(
        "--rm",
        dest="auto_remove",
        kind=BOOL,
        help="Automatically remove the container and its associated anonymous volumes "
        "when it exits",
    ),
    Flag("--shm-size", dest="shm_size", default="", help="Size of /dev/shm"),
    Flag("--stop-signal", dest="stop_signal", default="", help="Signal to stop the container"),
    Flag(
        "--stop-timeout",
        dest="stop_timeout",
        kind=INT,
        help="Timeout (in seconds) to stop a container",
    ),
    Flag("--sysctl", dest="sysctl", kind=LIST, help="Sysctl options"),
    Flag("--tmpfs", dest="tmpfs", kind=LIST, help="Mount a tmpfs directory"),
    Flag("-t", "--tty", dest="tty", kind=BOOL, help="Allocate a pseudo-TTY"),
    Flag("--uts", dest="uts", default="", help="UTS namespace to use"),
    Flag("--ulimit", dest="ulimit", kind=LIST, help="Ulimit options"),
    Flag(
        "-u",
        "--user",
        dest="user",
        default="",
        help='Username or UID (format: "<name|uid>[:<group|gid>]")',
    ),
    Flag("-v", "--volume", dest="volume", kind=LIST, help="Bind mount a volume"),
    Flag(
        "--volumes-from",
        dest="volumes_from",
        kind=LIST,
        help="Mount volumes from the specified container(s)",
    ),
    Flag(
        "-w", "--workdir", dest="workdir", default="", help="Working directory inside the container"
    ),
    Flag("-a", "--attach", dest="attach", kind=LIST, help="Attach to STDIN, STDOUT or STDERR"),
    Flag(
        "--annotation",
        dest="annotation",
        kind=LIST,
        help="Add an annotation to the container (passed through to the OCI runtime)",
    ),
    Flag(
        "--blkio-weight-device",
        dest="blkio_weight_device",
        kind=LIST,
        help="Block IO weight (relative device weight)",
    ),
    Flag("--cgroup-parent", dest="cgroup_parent", default="", help="Optional parent cgroup"),
    Flag("--cgroupns", dest="cgroupns", default="", help="Cgroup namespace to use (host|private)"),
    Flag("--cidfile", dest="cidfile", default="", help="Write the container ID to the file"),
    Flag(
        "--device-read-bps",
        dest="device_read_bps",
        kind=LIST,
        help="Limit read rate (bytes per second) from a device",
    ),
    Flag(
        "--device-read-iops",
        dest="device_read_iops",
        kind=LIST,
        help="Limit read rate (IO per second) from a device",
    ),
    Flag(
        "--device-write-bps",
        dest="device_write_bps",
        kind=LIST,
        help="Limit write rate (bytes per second) to a device",
    ),
    Flag(
        "--device-write-iops",
        dest="device_write_iops",
        kind=LIST,
        help="Limit write rate (IO per second) to a device",
    ),
    Flag("--domainname", dest="domainname", default="", help="Container NIS domain name"),
    Flag(
        "--label-file", dest="label_file", kind=LIST, help="Read in a line delimited file of labels"
    ),
    Flag(
        "--mac-address",
        dest="mac_address",
        default="",
        help="Container MAC address (e.g., 92:d0:c6:0a:29:33)",
    ),
    Flag(
        "--memory-swappiness",
        dest="memory_swappiness",
        kind=INT,
        default=-1,
        help="Tune container memory swappiness (0 to 100)",
    ),
    Flag("--oom-kill-disable", dest="oom_kill_disable", kind=BOOL, help="Disable OOM Killer"),
    Flag(
        "--oom-score-adj",
        dest="oom_score_adj",
        kind=INT,
        default=0,
        help="Tune host's OOM preferences (-1000 to 1000)",
    ),
    Flag("--runtime", dest="runtime", default="", help="Runtime to use for this container"),
    Flag("--security-opt", dest="security_opt", kind=LIST, help="Security Options"),
    Flag("--volume-driver", dest="volume_driver", default="", help="Optional volume driver"),
)

RUN_FLAGS: tuple[Flag, ...] = (
    *CREATE_FLAGS,
    Flag(
        "-d",
        "--detach",
        dest="detach",
        kind=BOOL,
        help="Run container in background and print container ID",
    ),
    Flag(
        "--detach-keys",
        dest="detach_keys",
        help="Override the key sequence for detaching a container",
    ),
    Flag(
        "--sig-proxy",
        dest="sig_proxy",
        kind=BOOL,
        default=True,
        help="Proxy received signals to the process",
    ),
)


def create_command(state: CLIState, command_path: str, opts: Mapping[str, Any]) -> None:
    """``create``: the body from the flags, the create (pulling as ``--pull`` says), the ID."""
    _, body = body_from_options(command_path, opts, detach=False)
    try:
        cid = create_container(
            state,
            body,
            name=opts["name"],
            pull=opts["pull"],
            quiet=opts["quiet"],
            platform=opts["platform"],
        )
    except (DockyardError, JSONMessageError) as exc:
        raise StatusError(1, _error_text(exc)) from exc
    _write_out(cid)


def run_command(state: CLIState, command_path: str, opts: Mapping[str, Any]) -> int:
    """``run``: create, then attach/wait/start; the container's exit status (or docker's
    125/126/127 when it could not be made or started)."""
    detach = bool(opts["detach"])
    if detach and opts["attach"]:
        raise StatusError(1, "conflicting options: cannot specify both --attach and --detach")
    _, body = body_from_options(command_path, opts, detach=detach)
    interactive, tty = bool(opts["interactive"]), bool(opts["tty"])
    if not detach and interactive and tty and not is_terminal(0):
        raise StatusError(1, "the input device is not a TTY")
    try:
        cid = create_container(
            state,
            body,
            name=opts["name"],
            pull=opts["pull"],
            quiet=opts["quiet"],
            platform=opts["platform"],
        )
    except (DockyardError, JSONMessageError) as exc:
        text = _error_text(exc)
        raise StatusError(_start_exit_code(text), run_error(command_path, text)) from exc
    try:
        detach_keys = parse_detach_keys(opts["detach_keys"])
    except ValueError:
        detach_keys = parse_detach_keys(None)
    client = state.client()

    def start_failed(exc: DockyardError) -> int:
        text = describe_error(exc)
        write_err(run_error(command_path, text))
        return _start_exit_code(text)

    return attach_and_start(
        client,
        cid,
        detach=detach,
        stdin=bool(body["AttachStdin"]) if opts["attach"] else interactive,
        stdout=bool(body["AttachStdout"]),
        stderr=bool(body["AttachStderr"]),
        tty=tty,
        auto_remove=bool(opts["auto_remove"]),
        proxy=SignalProxy(client, cid, forward=True).start() if opts["sig_proxy"] else None,
        detach_keys=detach_keys,
        on_start_error=start_failed,
    )


def _write_out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def pull_for_create(state: CLIState, image: str, *, quiet: bool, platform: str | None) -> None:
    """Pull ``image`` the way ``create``/``run`` do: progress to stderr, with the stored
    credentials for its registry.

    Raises the client's errors, or ``JSONMessageError`` for an error inside the stream.
    """
    from dockyard.client import iter_json_messages
    from dockyard.reference import parse

    from .progress import display_messages
    from .registry import registry_auth

    ref = parse(image)
    tag = ref.digest or ref.tag
    header = registry_auth(state, ref.domain)
    client = state.client()
    with client.image_create(ref.name, tag=tag, platform=platform, registry_auth=header) as stream:
        messages = iter_json_messages(stream.read)
        if quiet:
            sink = open(os.devnull, "w")  # noqa: SIM115 - closed below
            try:
                display_messages(messages, sink, is_terminal=False)
            finally:
                sink.close()
        else:
            display_messages(
                messages,
                sys.stderr,
                is_terminal=is_terminal(2),
                width=tty_size(2)[1] or 80,
            )


def _familiar_with_tag(image: str) -> str:
    from dockyard.reference import parse

    try:
        return parse(image).familiar()
    except DockyardError:
        return image


def create_container(
    state: CLIState,
    body: dict[str, Any],
    *,
    name: str | None,
    pull: str,
    quiet: bool,
    platform: str | None,
) -> str:
    """Create (pulling first for ``--pull always``, or on a 404 with ``missing``); print
    the daemon's warnings; return the new ID."""
    image = str(body["Image"])
    client = state.client()
    cidfile = str((body.get("HostConfig") or {}).get("ContainerIDFile") or "")
    cid_fd = _open_cidfile(cidfile) if cidfile else None
    try:
        if pull == "always":
            pull_for_create(state, image, quiet=quiet, platform=platform)
        try:
            response = client.container_create(body, name=name, platform=platform)
        except NotFound:
            if pull not in ("missing", ""):
                raise
            if not quiet:
                sys.stderr.write(f"Unable to find image '{_familiar_with_tag(image)}' locally\n")
                sys.stderr.flush()
            pull_for_create(state, image, quiet=quiet, platform=platform)
            response = client.container_create(body, name=name, platform=platform)
    except BaseException:
        if cid_fd is not None:
            os.close(cid_fd)
            with contextlib.suppress(OSError):
                os.unlink(cidfile)  # the docker CLI leaves no empty ID file behind
        raise
    cid = str(response["Id"])
    if cid_fd is not None:
        try:
            os.write(cid_fd, cid.encode())
        finally:
            os.close(cid_fd)
    for warning in response.get("Warnings") or []:
        sys.stderr.write(f"WARNING: {warning}\n")
    sys.stderr.flush()
    return cid


def _open_cidfile(path: str) -> int:
    """``--cidfile``: a new file (an existing one means another container may own it)."""
    if os.path.exists(path):
        raise InvalidArgument(
            f"container ID file found, make sure the other container isn't running or delete {path}"
        )
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise InvalidArgument(
            f"failed to create the container ID file: open {path}: {reason}"
        ) from exc


def _validate_pull(value: str) -> str | None:
    if value in ("always", "missing", "never", ""):
        return None
    return f'invalid pull option: \'{value}\': must be one of "always", "missing" or "never"'


def run_error(command_path: str, message: str) -> str:
    """docker run's error text (exit 125/126/127): the message and where to get help."""
    return f"{PROG}: {message}\n\nRun '{command_path} --help' for more information"


def _start_exit_code(message: str) -> int:
    if (
        "executable file not found" in message
        or "no such file or directory" in message
        or "system cannot find the file specified" in message
    ):
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, JSONMessageError):
        return exc.message
    return describe_error(exc)


def body_from_options(
    command_path: str, opts: Mapping[str, Any], *, detach: bool
) -> tuple[str, dict[str, Any]]:
    args: tuple[str, ...] = opts["args"]
    image, command = args[0], args[1:]
    problem = _validate_pull(opts["pull"])
    if problem:
        raise StatusError(125, run_error(command_path, problem))
    from .createopts import CreateOptions, build_create_body

    spec = CreateOptions(
        image=image,
        command=command,
        interactive=bool(opts["interactive"]),
        tty=bool(opts["tty"]),
        detach=detach,
        auto_remove=bool(opts["auto_remove"]),
        env=opts["env"],
        env_files=opts["env_file"],
        workdir=opts["workdir"],
        user=opts["user"],
        entrypoint=opts["entrypoint"],
        hostname=opts["hostname"],
        labels=opts["label"],
        network=opts["network"],
        network_aliases=opts["network_alias"],
        ip=opts["ip"],
        restart=opts["restart"],
        console_size=tty_size(1),
        publish=opts["publish"],
        publish_all=bool(opts["publish_all"]),
        expose=opts["expose"],
        volumes=opts["volume"],
        mounts=opts["mount"],
        volumes_from=opts["volumes_from"],
        privileged=bool(opts["privileged"]),
        cap_add=opts["cap_add"],
        cap_drop=opts["cap_drop"],
        memory=opts["memory"],
        cpus=opts["cpus"],
        add_hosts=opts["add_host"],
        tmpfs=opts["tmpfs"],
        init=bool(opts["init"]),
        stop_signal=opts["stop_signal"],
        stop_timeout=opts["stop_timeout"],
        read_only=bool(opts["read_only"]),
        dns=opts["dns"],
        dns_search=opts["dns_search"],
        dns_options=opts["dns_option"],
        shm_size=opts["shm_size"],
        ulimits=opts["ulimit"],
        sysctls=opts["sysctl"],
        log_driver=opts["log_driver"],
        log_opts=opts["log_opt"],
        health_cmd=opts["health_cmd"],
        health_interval=opts["health_interval"],
        health_timeout=opts["health_timeout"],
        health_start_period=opts["health_start_period"],
        health_start_interval=opts["health_start_interval"],
        health_retries=opts["health_retries"],
        no_healthcheck=bool(opts["no_healthcheck"]),
        memory_swap=opts["memory_swap"],
        memory_reservation=opts["memory_reservation"],
        cpu_shares=opts["cpu_shares"],
        cpu_period=opts["cpu_period"],
        cpu_quota=opts["cpu_quota"],
        cpuset_cpus=opts["cpuset_cpus"],
        cpuset_mems=opts["cpuset_mems"],
        blkio_weight=opts["blkio_weight"],
        pids_limit=opts["pids_limit"],
        devices=opts["device"],
        device_cgroup_rules=opts["device_cgroup_rule"],
        pid=opts["pid"],
        ipc=opts["ipc"],
        uts=opts["uts"],
        group_add=opts["group_add"],
        security_opts=opts["security_opt"],
        oom_score_adj=opts["oom_score_adj"],
        oom_kill_disable=bool(opts["oom_kill_disable"]),
        memory_swappiness=opts["memory_swappiness"],
        cgroupns=opts["cgroupns"],
        cgroup_parent=opts["cgroup_parent"],
        domainname=opts["domainname"],
        mac_address=opts["mac_address"],
        label_files=opts["label_file"],
        annotations=opts["annotation"],
        runtime=opts["runtime"],
        volume_driver=opts["volume_driver"],
        blkio_weight_devices=opts["blkio_weight_device"],
        device_read_bps=opts["device_read_bps"],
        device_write_bps=opts["device_write_bps"],
        device_read_iops=opts["device_read_iops"],
        device_write_iops=opts["device_write_iops"],
        cidfile=opts["cidfile"],
        attach=opts["attach"],
    )
    try:
        body = build_create_body(spec)
    except InvalidArgument as exc:
        raise StatusError(125, run_error(command_path, exc.message)) from exc
    return image, body


def attach_and_start(
    client: Client,
    cid: str,
    *,
    detach: bool = False,
    stdin: bool,
    stdout: bool = True,
    stderr: bool = True,
    tty: bool,
    auto_remove: bool,
    proxy: SignalProxy | None,
    detach_keys: bytes,
    on_start_error: Callable[[DockyardError], int],
) -> int:
    """Attach, wait, start, stream; return the exit status (``run`` and ``start -a``).

    The attach comes before start so no output is lost; the wait is sent before start and
    answers its headers at once; output is streamed from a thread while start is sent. A
    start error goes to ``on_start_error`` (after an ``--rm`` container is gone), whose
    answer is the status. ``proxy`` forwards signals; it is stopped on the way out.
    """
    conn: HijackedStream | None = None
    waiter: WaitHandle | None = None
    output: OutputThread | None = None
    try:
        if detach:
            _write_out(cid)  # docker prints the ID before the start answers
        else:
            conn = client.container_attach(cid, stdin=stdin, stdout=stdout, stderr=stderr)
        waiter = client.container_wait(cid, condition="removed" if auto_remove else "next-exit")
        if conn is not None:
            stdin_f, stdout_f, stderr_f = binary_stdio()
            output = OutputThread(
                conn,
                stdin=stdin_f if stdin else None,
                stdout=stdout_f,
                stderr=stdout_f if tty else stderr_f,
                tty=tty,
                detach_keys=detach_keys,
                raw=stdin and tty,
            )
            output.start()
        try:
            client.container_start(cid)
        except DockyardError as exc:
            if output is not None:
                output.cancel()
            if auto_remove:
                with contextlib.suppress(DockyardError):
                    waiter.result()
            return on_start_error(exc)
        if output is None:
            return 0
        if tty and is_terminal(1):
            if proxy is None:
                proxy = SignalProxy(client, cid, forward=False).start()
            proxy.watch_resize(cid, is_exec=False)
        error = output.join()
        if isinstance(error, DetachRequested):
            return 0
        if isinstance(error, (StreamError, OSError)):
            raise StatusError(1, str(error)) from error
        if error is not None:
            raise error
        return wait_status(waiter)
    finally:
        if waiter is not None:
            waiter.close()
        if conn is not None:
            conn.close()
        if proxy is not None:
            proxy.stop()


def wait_status(waiter: WaitHandle) -> int:
    try:
        result = waiter.result()
    except DockyardError as exc:
        _log_error(f"error waiting for container: {describe_error(exc)}")
        return 125
    error = result.get("Error")
    if error:
        message = error.get("Message", "") if isinstance(error, dict) else str(error)
        _log_error(f"Error waiting for container: {message}")
        return 125
    return int(result.get("StatusCode") or 0)


def _log_error(message: str) -> None:
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    escaped = message.replace("\\", "\\\\").replace('"', '\\"')
    write_err(f'time="{stamp}" level=error msg="{escaped}"')


def write_err(message: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class OutputThread:
    """Runs ``pump`` on a thread so start can be sent while output already streams.

    The terminal goes raw before start (``-it``) and is restored as soon as output ends.
    """

    def __init__(
        self,
        conn: Any,
        *,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        tty: bool,
        detach_keys: bytes,
        raw: bool,
    ) -> None:
        self.conn = conn
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.tty = tty
        self.detach_keys = detach_keys
        self.raw = raw
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dockyard-output", daemon=True)
        self._raw_ctx: Any = None
        self._restore: Callable[[], None] = lambda: None

    def start(self) -> None:
        if self.raw:
            self._raw_ctx = raw_terminal(0, True)
            self._restore = self._raw_ctx.__enter__()
        self._thread.start()

    def _run(self) -> None:
        try:
            pump(
                self.conn,
                stdin=self.stdin,
                stdout=self.stdout,
                stderr=self.stderr,
                tty=self.tty,
                detach_keys=self.detach_keys,
                on_output_end=self._restore,
            )
        except BaseException as exc:  # handed to the main thread
            self.error = exc
        finally:
            self._restore()
            self._done.set()

    def cancel(self) -> None:
        self.conn.close()
        self._done.wait(5)
        self._finish()

    def join(self) -> BaseException | None:
        # Wait in small steps so signal handlers keep running on the main thread.
        while not self._done.wait(0.2):
            pass
        self._finish()
        return self.error

    def _finish(self) -> None:
        self._restore()
        if self._raw_ctx is not None:
            ctx, self._raw_ctx = self._raw_ctx, None
            ctx.__exit__(None, None, None)
