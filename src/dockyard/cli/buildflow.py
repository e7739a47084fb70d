"""``build`` without click: its flags, the context tarball, the streamed build.

``main`` parses ``build`` with ``flagspec`` when it can and calls ``build_command``; the click
command in ``build`` calls the same function. Like the docker CLI, the context directory is
tarred (``.dockerignore`` honoured; the Dockerfile and ``.dockerignore`` always sent), spooled
to an unnamed temporary file and streamed to ``POST /build``.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile

from dockyard.errors import InvalidArgument

from .base import CLIState, StatusError
from .flagspec import BOOL, INT, LIST, Flag, check_extra_host

TYPE_CHECKING = False  # not typing's: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO, Any

__all__ = ["BUILD_FLAGS", "BUILD_USAGE", "build_command", "human_size"]

BUILD_USAGE = "build [OPTIONS] PATH | URL | -"

BUILD_FLAGS: tuple[Flag, ...] = (
    Flag("-t", "--tag", dest="tags", kind=LIST, help="Name and optionally a tag (name:tag)"),
    Flag("-f", "--file", dest="dockerfile", default="", help="Name of the Dockerfile"),
    Flag("--build-arg", dest="build_args", kind=LIST, help="Set build-time variables"),
    Flag("--target", dest="target", default="", help="Set the target build stage to build"),
    Flag("--no-cache", dest="no_cache", kind=BOOL, help="Do not use cache when building the image"),
    Flag(
        "--pull",
        dest="pull",
        kind=BOOL,
        help="Always attempt to pull a newer version of the image",
    ),
    Flag("--label", dest="labels", kind=LIST, help="Set metadata for an image"),
    Flag(
        "-q",
        "--quiet",
        dest="quiet",
        kind=BOOL,
        help="Suppress the build output and print image ID",
    ),
    Flag("--iidfile", dest="iidfile", default="", help="Write the image ID to the file"),
    Flag("--network", dest="network", default="", help="Networking mode for the RUN instructions"),
    Flag(
        "--platform",
        dest="platform",
        default="",
        help="Set platform if server is multi-platform capable",
    ),
    Flag("--rm", dest="rm", kind=BOOL, default=True, help="Remove intermediate containers"),
    Flag("--force-rm", dest="force_rm", kind=BOOL, help="Always remove intermediate containers"),
    Flag(
        "--add-host",
        dest="add_hosts",
        kind=LIST,
        help="Add a custom host-to-IP mapping",
        check=check_extra_host,
    ),
    Flag("--cache-from", dest="cache_from", kind=LIST, help="Images to consider as cache sources"),
    Flag("--cgroup-parent", dest="cgroup_parent", default="", help="Parent cgroup for RUN"),
    Flag("--compress", dest="compress", kind=BOOL, help="Compress the build context using gzip"),
    Flag("--cpu-period", dest="cpu_period", kind=INT, default=0, help="Limit CPU CFS period"),
    Flag("--cpu-quota", dest="cpu_quota", kind=INT, default=0, help="Limit CPU CFS quota"),
    Flag("-c", "--cpu-shares", dest="cpu_shares", kind=INT, default=0, help="CPU shares"),
    Flag("--cpuset-cpus", dest="cpuset_cpus", default="", help="CPUs in which to allow execution"),
    Flag("--cpuset-mems", dest="cpuset_mems", default="", help="MEMs in which to allow execution"),
    Flag(
        "--disable-content-trust",
        dest="disable_content_trust",
        kind=BOOL,
        default=True,
        help="Skip image verification",
    ),
    Flag("--isolation", dest="isolation", default="", help="Container isolation technology"),
    Flag("-m", "--memory", dest="memory", default="", help="Memory limit"),
    Flag("--memory-swap", dest="memory_swap", default="", help="Swap limit: '-1' for unlimited"),
    Flag("--security-opt", dest="security_opts", kind=LIST, help="Security options"),
    Flag("--shm-size", dest="shm_size", default="", help="Size of /dev/shm"),
    Flag("--squash", dest="squash", kind=BOOL, help="Squash newly built layers into one"),
    Flag("--ulimit", dest="ulimits", kind=LIST, help="Ulimit options"),
)


def build_command(state: CLIState, opts: Mapping[str, Any]) -> int:
    """``build PATH|-``: send the context, show the build's stream, print or write the ID."""
    from dockyard.client.build_api import build as api_build

    if opts["squash"]:  # the docker CLI asks the daemon first; ours never squashes
        raise StatusError(
            1, '"--squash" is only supported on a Docker daemon with experimental features enabled'
        )
    path = opts["args"][0]
    dockerfile: str = opts["dockerfile"]
    quiet: bool = opts["quiet"]
    iidfile: str = opts["iidfile"]
    tags, build_args, labels = opts["tags"], opts["build_args"], opts["labels"]
    target, no_cache, pull = opts["target"], opts["no_cache"], opts["pull"]
    network, platform = opts["network"], opts["platform"]
    rm, force_rm = opts["rm"], opts["force_rm"]

    stdin_dockerfile: bytes | None = None
    if dockerfile == "-":
        if path == "-":
            raise StatusError(
                1, "invalid argument: can't use stdin for both build context and dockerfile"
            )
        stdin_dockerfile = sys.stdin.buffer.read()
    spool = _spool()
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
            if (len(data) >= 262 and data[257:262] == b"ustar") or data[:2] == b"\x1f\x8b":
                spool.write(data)
            else:  # a Dockerfile on stdin, no context
                with tarfile.open(fileobj=spool, mode="w") as tar:
                    info = tarfile.TarInfo("Dockerfile")
                    info.size = len(data)
                    info.mode = 0o644
                    tar.addfile(info, io.BytesIO(data))
        else:
            root = path
            if not os.path.isdir(root):
                raise StatusError(1, f'unable to prepare context: path "{path}" not found')
            extra: tuple[str, bytes] | None = None
            if stdin_dockerfile is not None:
                # As the docker CLI: the Dockerfile joins the context under a random name.
                name = ".dockerfile." + os.urandom(10).hex()
                extra = (name, stdin_dockerfile)
            else:
                name = dockerfile or "Dockerfile"
                if os.path.isabs(name):
                    name = os.path.relpath(name, root)
            dockerfile = name
            _context_tar(root, name, spool, extra=extra)
        if opts["compress"]:
            spool = _gzipped(spool)
        size = spool.tell()
        spool.seek(0)
        if not quiet:
            _write_out(f"Sending build context to Docker daemon  {human_size(size)}\n")
        build_args_map: dict[str, str | None] = {}
        for item in build_args:
            key, sep, value = item.partition("=")
            build_args_map[key] = value if sep else os.environ.get(key)
        label_map = dict(item.partition("=")[::2] for item in labels)
        query: dict[str, Any] = {
            "t": list(tags) or None,
            "dockerfile": dockerfile or None,
            "buildargs": json.dumps(build_args_map) if build_args_map else None,
            "target": target or None,
            "nocache": "1" if no_cache else None,
            "pull": "1" if pull else None,
            "labels": json.dumps(label_map) if label_map else None,
            "q": "1" if quiet else None,
            "networkmode": network or None,
            "platform": platform or None,
            "rm": "1" if rm else "0",
            "forcerm": "1" if force_rm else None,
            "version": "1",
            **_resource_query(opts),
        }
        client = state.client()
        image_id = ""
        with api_build(client, _chunks(spool), query) as stream:
            from dockyard.client import iter_json_messages

            from .progress import JSONMessageError, display_messages

            def on_aux(message: Mapping[str, Any]) -> None:
                nonlocal image_id
                aux = message.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = str(aux["ID"])

            # Like docker: steps as text, and pulls of base images as progress lines.
            out = io.StringIO() if quiet else sys.stdout
            try:
                display_messages(
                    iter_json_messages(stream.read),
                    out,
                    is_terminal=not quiet and sys.stdout.isatty(),
                    aux=on_aux,
                )
            except JSONMessageError as exc:
                raise StatusError(exc.code or 1, exc.message or "build failed") from None
        if quiet and image_id:
            _write_out(image_id)
        if iidfile and image_id:
            with open(iidfile, "w") as f:
                f.write(image_id)
    finally:
        spool.close()
    return 0


def _gzipped(spool: IO[bytes]) -> IO[bytes]:
    """``--compress``: the context tar gzipped into a new spool (the daemon unpacks either)."""
    import gzip
    import shutil

    spool.seek(0)
    out = _spool()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6) as gz:
        shutil.copyfileobj(spool, gz, 1 << 20)
    spool.close()
    return out


def _resource_query(opts: Mapping[str, Any]) -> dict[str, Any]:
    """The RUN containers' settings as the docker CLI sends them (``extrahosts`` and
    ``securityopt`` repeated, ``ulimits`` and ``cachefrom`` as JSON, sizes in bytes)."""
    from .createopts import parse_bytes, parse_memory_swap, parse_ulimit

    try:
        memory = parse_bytes(opts["memory"]) if opts["memory"] else 0
        swap = parse_memory_swap(opts["memory_swap"]) if opts["memory_swap"] else 0
        shm = parse_bytes(opts["shm_size"]) if opts["shm_size"] else 0
        ulimits = [parse_ulimit(u) for u in opts["ulimits"]]
    except InvalidArgument as exc:
        raise StatusError(125, f"invalid argument: {exc.message}") from exc
    return {
        "extrahosts": list(opts["add_hosts"]) or None,
        "securityopt": list(opts["security_opts"]) or None,
        "cachefrom": json.dumps(list(opts["cache_from"])) if opts["cache_from"] else None,
        "cgroupparent": opts["cgroup_parent"] or None,
        "cpusetcpus": opts["cpuset_cpus"] or None,
        "cpusetmems": opts["cpuset_mems"] or None,
        "cpushares": str(opts["cpu_shares"]) if opts["cpu_shares"] else None,
        "cpuquota": str(opts["cpu_quota"]) if opts["cpu_quota"] else None,
        "cpuperiod": str(opts["cpu_period"]) if opts["cpu_period"] else None,
        "memory": str(memory) if memory else None,
        "memswap": str(swap) if swap else None,
        "shmsize": str(shm) if shm else None,
        "ulimits": json.dumps(ulimits) if ulimits else None,
        "isolation": opts["isolation"] or None,
        "squash": "1" if opts["squash"] else None,
    }


def _spool() -> IO[bytes]:
    """An unnamed temporary file (``O_TMPFILE``: nothing to clean up, and no ``tempfile``
    import on the start-up path)."""
    directory = os.environ.get("TMPDIR") or "/tmp"
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
    except OSError:
        import tempfile

        return tempfile.TemporaryFile()
    return open(fd, "w+b")


def _write_out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def human_size(n: float) -> str:
    """go-units HumanSize: decimal units, 4 significant digits ("3.072kB")."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000
        i += 1
    return f"{n:.4g}{units[i]}"


def _context_tar(
    root: str, dockerfile: str, out: Any, *, extra: tuple[str, bytes] | None = None
) -> None:
    """Tar the context directory, leaving out what .dockerignore excludes (the Dockerfile
    and .dockerignore are always sent, as the docker CLI does); ``extra`` is one more file
    (name, content) at the root: a Dockerfile read from stdin."""
    from dockyard.build.dockerignore import Matcher

    ignore = os.path.join(root, ".dockerignore")
    text = ""
    if os.path.isfile(ignore):
        with open(ignore) as f:
            text = f.read()
    matcher = Matcher.from_text(text)
    keep = {".dockerignore", os.path.normpath(dockerfile)}
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(rel: str) -> None:
            full = os.path.join(root, rel)
            info = tar.gettarinfo(str(full), arcname=rel)
            info.uname = info.gname = ""
            info.uid = info.gid = 0
            if info.isreg():
                with open(full, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)

        for dirpath, dirnames, filenames in os.walk(root):
            base = os.path.relpath(dirpath, root)
            base = "" if base == "." else base
            dirnames.sort()
            for name in list(dirnames):
                rel = f"{base}/{name}" if base else name
                if matcher.excluded(rel):
                    if not matcher.may_contain_included(rel):
                        dirnames.remove(name)
                    continue
                if os.path.islink(os.path.join(root, rel)):
                    dirnames.remove(name)
                add(rel)
            for name in sorted(filenames):
                rel = f"{base}/{name}" if base else name
                if matcher.excluded(rel) and rel not in keep:
                    continue
                add(rel)
        if extra is not None:
            info = tarfile.TarInfo(extra[0])
            info.size = len(extra[1])
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(extra[1]))


def _chunks(f: Any) -> Any:
    while chunk := f.read(1 << 16):
        yield chunk
