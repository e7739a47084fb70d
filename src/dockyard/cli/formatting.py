"""How the docker CLI renders things, reproduced byte for byte (pure; table-tested).

- ``tabwrite``: Go's ``text/tabwriter`` (column blocks, min width, padding).
- ``human_size``/``bytes_size``/``human_duration``: ``docker/go-units``.
- ``ellipsis``, ``truncate_id``, ``displayable_ports``, ``go_time_string``.
- ``ContainerContext``/``ImageContext``: the fields ``ps``/``images`` templates see.
- ``Formatter``: docker's ``formatter.Context`` (``table``/``json``/custom formats).
- ``json_indent``: Go's ``json.Indent`` over raw daemon JSON (keeps its escapes and order).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from dockyard.units import human_duration

from .gofmt import MISSING, TemplateError, go_quote

__all__ = [
    "CONTAINER_HEADERS",
    "IMAGE_HEADERS",
    "ContainerContext",
    "Formatter",
    "HeaderContext",
    "ImageContext",
    "bytes_size",
    "displayable_ports",
    "ellipsis",
    "go_duration",
    "go_time_string",
    "human_duration",
    "human_size",
    "image_rows",
    "json_compact",
    "json_indent",
    "tabwrite",
    "truncate_id",
]

# --------------------------------------------------------------------------- tabwriter


def tabwrite(text: str, minwidth: int = 10, padding: int = 3, padchar: str = " ") -> str:
    """Align tab-separated cells like Go's ``tabwriter.NewWriter(out, minwidth, 1, padding,
    padchar, 0)`` followed by ``Flush``.

    A column's width is the widest cell in its block of consecutive lines plus
    ``padding`` (at least ``minwidth``); text after a line's last tab is not aligned.
    """
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write_lines(line0: int, line1: int) -> None:
        for i in range(line0, line1):
            cells = lines[i]
            for j, cell in enumerate(cells):
                out.append(cell)
                if j < len(widths):
                    out.append(padchar * (widths[j] - len(cell)))
            if i + 1 != len(lines):
                out.append("\n")

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    return "".join(out)


# --------------------------------------------------------------------------- units

_DECIMAL_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
_BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def _scale(size: float, base: float, units: list[str]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def _go_g(value: float, precision: int) -> str:
    """Go's ``%.{precision}g`` (same digits and exponent form as C's)."""
    return f"{value:.{precision}g}"


def human_size(size: float, precision: int = 4) -> str:
    """``units.HumanSizeWithPrecision``: base 1000, ``4.26MB``."""
    value, unit = _scale(float(size), 1000.0, _DECIMAL_UNITS)
    return _go_g(value, precision) + unit


def bytes_size(size: float) -> str:
    """``units.BytesSize``: base 1024, ``23.54GiB``."""
    value, unit = _scale(float(size), 1024.0, _BINARY_UNITS)
    return _go_g(value, 4) + unit


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String`` for whole seconds: ``1h2m3s``, ``45s``, ``0s``."""
    total = round(seconds)
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{sign}{h}h{m}m{s}s"
    if m:
        return f"{sign}{m}m{s}s"
    return f"{sign}{s}s"


def go_time_string(unix: int) -> str:
    """Go's ``time.Unix(unix, 0).String()`` in local time: ``2024-01-01 00:00:00 +0000 UTC``."""
    dt = datetime.fromtimestamp(unix).astimezone()
    zone = dt.strftime("%Z") or dt.strftime("%z")
    return dt.strftime("%Y-%m-%d %H:%M:%S %z ") + zone


def since(unix: int, now: float | None = None) -> str:
    """``2 minutes ago`` for a Unix timestamp."""
    current = time.time() if now is None else now
    return human_duration(current - unix) + " ago"


# --------------------------------------------------------------------------- strings


def _rune_width(ch: str) -> int:
    if ord(ch) < 0x300:
        return 1
    import unicodedata

    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def ellipsis(text: str, max_width: int) -> str:
    """docker's ``formatter.Ellipsis``: cut to ``max_width`` display cells, ending in ``…``."""
    if max_width <= 0:
        return ""
    if text.isascii():
        if len(text) <= max_width:
            return text
        if max_width == 1:
            return text[0]
        return text[: max_width - 1] + "…"
    widths: list[int] = []
    total = 0
    for ch in text:
        total += _rune_width(ch)
        widths.append(total)
    if total <= max_width:
        return text
    if max_width == 1:
        return text[0]
    for i in range(len(widths) - 1):
        if widths[i] <= max_width - 1 < widths[i + 1]:
            return text[: i + 1] + "…"
    return text


def truncate_id(value: str) -> str:
    """``stringid.TruncateID``: drop ``sha256:``, keep 12 characters."""
    if ":" in value:
        value = value.split(":", 1)[1]
    return value[:12]


def _join_host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def displayable_ports(ports: Sequence[Mapping[str, Any]] | None) -> str:
    """docker's ``DisplayablePorts``: ``0.0.0.0:80->80/tcp, 443/tcp``, ranges grouped."""
    if not ports:
        return ""

    def key(p: Mapping[str, Any]) -> tuple[int, str, int, str]:
        return (
            int(p.get("PrivatePort") or 0),
            str(p.get("IP") or ""),
            int(p.get("PublicPort") or 0),
            str(p.get("Type") or ""),
        )

    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    host_mappings: list[str] = []
    for port in sorted(ports, key=key):
        current = int(port.get("PrivatePort") or 0)
        ptype = str(port.get("Type") or "")
        ip = str(port.get("IP") or "")
        public = int(port.get("PublicPort") or 0)
        group_key = ptype
        if ip:
            if public != current:
                host_mappings.append(f"{_join_host_port(ip, str(public))}->{current}/{ptype}")
                continue
            group_key = f"{ip}/{ptype}"
        group = groups.get(group_key)
        if group is None:
            groups[group_key] = [current, current]
            order.append(group_key)
            continue
        if current == group[1] + 1:
            group[1] = current
            continue
        result.append(_form_group(group_key, group[0], group[1]))
        groups[group_key] = [current, current]
    for group_key in order:
        first, last = groups[group_key]
        result.append(_form_group(group_key, first, last))
    result.extend(host_mappings)
    return ", ".join(result)


def _form_group(key: str, start: int, last: int) -> str:
    parts = key.split("/")
    group_type = parts[0]
    ip = ""
    if len(parts) > 1:
        ip, group_type = parts[0], parts[1]
    group = str(start) if start == last else f"{start}-{last}"
    if ip:
        group = f"{_join_host_port(ip, group)}->{group}"
    return f"{group}/{group_type}"


# --------------------------------------------------------------------------- JSON


def json_indent(raw: str, indent: str = "    ", prefix: str = "") -> str:
    """Go's ``json.Indent``: re-indent raw JSON text, keeping strings byte for byte.

    Empty arrays/objects stay ``[]``/``{}``. The input is assumed to be valid JSON.
    """
    out: list[str] = []
    depth = 0
    need_indent = False
    in_string = False
    escaped = False
    i = 0
    n = len(raw)
    while i < n:
        ch = raw[i]
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            i += 1
            continue
        if ch in " \t\r\n":
            i += 1
            continue
        if need_indent and ch not in "]}":
            need_indent = False
            depth += 1
            out.append("\n" + prefix + indent * depth)
        if ch == '"':
            in_string = True
            out.append(ch)
        elif ch in "[{":
            need_indent = True
            out.append(ch)
        elif ch == ",":
            out.append(",\n" + prefix + indent * depth)
        elif ch == ":":
            out.append(": ")
        elif ch in "]}":
            if need_indent:
                need_indent = False  # empty: "[]" / "{}"
            else:
                depth -= 1
                out.append("\n" + prefix + indent * depth)
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def json_compact(raw: str) -> str:
    """Go's ``json.Compact``: drop insignificant whitespace, keep strings byte for byte."""
    out: list[str] = []
    in_string = False
    escaped = False
    for ch in raw:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch not in " \t\r\n":
            out.append(ch)
    return "".join(out)


# --------------------------------------------------------------------------- contexts

CONTAINER_HEADERS: dict[str, str] = {
    "ID": "CONTAINER ID",
    "Names": "NAMES",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "State": "STATE",
    "Status": "STATUS",
    "Size": "SIZE",
    "Labels": "LABELS",
    "Mounts": "MOUNTS",
    "LocalVolumes": "LOCAL VOLUMES",
    "Networks": "NETWORKS",
    "Platform": "PLATFORM",
}

IMAGE_HEADERS: dict[str, str] = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Containers": "CONTAINERS",
    "VirtualSize": "SIZE",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
}


class HeaderContext:
    """What a table header row is rendered against: field name → column title."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers

    def template_field(self, name: str) -> Any:
        if name == "Label":
            return self.label
        if name in self.headers:
            return self.headers[name]
        return MISSING

    def template_json(self) -> Any:
        return dict(self.headers)

    @staticmethod
    def label(name: str) -> str:
        last = name.split(".")[-1]
        return last.replace("-", " ").replace("_", " ")


class _Context:
    fields: tuple[str, ...] = ()
    go_type = "*formatter.Context"

    def __init__(self) -> None:
        self.fields_used: set[str] = set()

    def template_field(self, name: str) -> Any:
        if name in self.fields:
            self.fields_used.add(name)
            return getattr(self, "f_" + name)()
        method = getattr(self, "m_" + name, None)
        if method is not None:
            self.fields_used.add(name)
            return method
        raise KeyError(name)

    def template_json(self) -> Any:
        return {name: self.template_field(name) for name in self.fields}


class ContainerContext(_Context):
    """One ``GET /containers/json`` entry as ``ps`` templates see it."""

    go_type = "*formatter.ContainerContext"

    fields = (
        "Command",
        "CreatedAt",
        "ID",
        "Image",
        "Labels",
        "LocalVolumes",
        "Mounts",
        "Names",
        "Networks",
        "Platform",
        "Ports",
        "RunningFor",
        "Size",
        "State",
        "Status",
    )

    def __init__(self, c: Mapping[str, Any], trunc: bool = True, now: float | None = None):
        super().__init__()
        self.c = c
        self.trunc = trunc
        self.now = now

    def f_ID(self) -> str:
        cid = str(self.c.get("Id") or "")
        return truncate_id(cid) if self.trunc else cid

    def f_Names(self) -> str:
        names = [
            str(n)[1:] if str(n).startswith("/") else str(n) for n in self.c.get("Names") or []
        ]
        if self.trunc:
            for name in names:
                if "/" not in name:
                    return name
            return ""
        return ",".join(names)

    def f_Image(self) -> str:
        image = str(self.c.get("Image") or "")
        if not image:
            return "<no image>"
        if not self.trunc:
            return image
        image_id = str(self.c.get("ImageID") or "")
        if truncate_id(image_id) == truncate_id(image):
            return truncate_id(image)
        from dockyard.errors import DockyardError
        from dockyard.reference import parse

        try:
            ref = parse(image, default_tag=False)
        except DockyardError:
            return image
        if ref.digest is not None:
            return ref.familiar_name + (f":{ref.tag}" if ref.tag else "")
        return ref.familiar()

    def f_Command(self) -> str:
        command = str(self.c.get("Command") or "")
        if self.trunc:
            command = ellipsis(command, 20)
        return go_quote(command)

    def f_CreatedAt(self) -> str:
        return go_time_string(int(self.c.get("Created") or 0))

    def f_RunningFor(self) -> str:
        return since(int(self.c.get("Created") or 0), self.now)

    def f_Ports(self) -> str:
        return displayable_ports(self.c.get("Ports"))

    def f_State(self) -> str:
        return str(self.c.get("State") or "")

    def f_Status(self) -> str:
        return str(self.c.get("Status") or "")

    def f_Size(self) -> str:
        srw = human_size(int(self.c.get("SizeRw") or 0), 3)
        root = int(self.c.get("SizeRootFs") or 0)
        if root > 0:
            return f"{srw} (virtual {human_size(root, 3)})"
        return srw

    def f_Labels(self) -> str:
        labels = self.c.get("Labels")
        if not labels:
            return ""
        return ",".join(sorted(f"{k}={v}" for k, v in labels.items()))

    def m_Label(self, name: str) -> str:
        labels = self.c.get("Labels") or {}
        return str(labels.get(name, ""))

    def f_Mounts(self) -> str:
        names: list[str] = []
        for m in self.c.get("Mounts") or []:
            name = str(m.get("Name") or m.get("Source") or "")
            names.append(ellipsis(name, 15) if self.trunc else name)
        return ",".join(names)

    def f_LocalVolumes(self) -> str:
        return str(sum(1 for m in self.c.get("Mounts") or [] if m.get("Driver") == "local"))

    def f_Networks(self) -> str:
        settings = self.c.get("NetworkSettings")
        if not settings:
            return ""
        return ",".join(sorted((settings.get("Networks") or {}).keys()))

    def f_Platform(self) -> Any:
        desc = self.c.get("ImageManifestDescriptor") or {}
        platform = desc.get("platform") if isinstance(desc, dict) else None
        if not platform:
            return None
        return platform


class ImageContext(_Context):
    """One row of ``images`` (an image summary with one repository/tag/digest)."""

    go_type = "*formatter.imageContext"

    fields = (
        "Containers",
        "CreatedAt",
        "CreatedSince",
        "Digest",
        "ID",
        "Repository",
        "SharedSize",
        "Size",
        "Tag",
        "UniqueSize",
        "VirtualSize",
    )

    def __init__(
        self,
        image: Mapping[str, Any],
        repo: str,
        tag: str,
        digest: str,
        trunc: bool = True,
        now: float | None = None,
    ) -> None:
        super().__init__()
        self.i = image
        self.repo = repo
        self.tag = tag
        self.digest = digest
        self.trunc = trunc
        self.now = now

    def f_ID(self) -> str:
        iid = str(self.i.get("Id") or "")
        return truncate_id(iid) if self.trunc else iid

    def f_Repository(self) -> str:
        return self.repo

    def f_Tag(self) -> str:
        return self.tag

    def f_Digest(self) -> str:
        return self.digest

    def f_CreatedSince(self) -> str:
        return since(int(self.i.get("Created") or 0), self.now)

    def f_CreatedAt(self) -> str:
        return go_time_string(int(self.i.get("Created") or 0))

    def f_Size(self) -> str:
        return human_size(int(self.i.get("Size") or 0), 3)

    def f_Containers(self) -> str:
        count = self.i.get("Containers", -1)
        return "N/A" if count is None or count == -1 else str(count)

    def f_VirtualSize(self) -> str:
        return human_size(int(self.i.get("Size") or 0))

    def f_SharedSize(self) -> str:
        shared = self.i.get("SharedSize", -1)
        return "N/A" if shared is None or shared == -1 else human_size(int(shared))

    def f_UniqueSize(self) -> str:
        size = self.i.get("Size", -1)
        shared = self.i.get("SharedSize", -1)
        if size is None or shared is None or size == -1 or shared == -1:
            return "N/A"
        return human_size(int(size) - int(shared))


def image_rows(
    images: Iterable[Mapping[str, Any]],
    *,
    digests: bool,
    trunc: bool,
    now: float | None = None,
) -> list[ImageContext]:
    """One context per displayed row, the way docker's ``imageFormat`` splits summaries."""
    from dockyard.errors import DockyardError
    from dockyard.reference import parse

    rows: list[ImageContext] = []
    for img in images:
        repo_tags = list(img.get("RepoTags") or [])
        repo_digests = list(img.get("RepoDigests") or [])
        dangling = (not repo_tags and not repo_digests) or (
            repo_tags == ["<none>:<none>"] and repo_digests == ["<none>@<none>"]
        )
        if dangling:
            rows.append(ImageContext(img, "<none>", "<none>", "<none>", trunc, now))
            continue
        tags: dict[str, list[str]] = {}
        digs: dict[str, list[str]] = {}
        for text in repo_tags:
            try:
                ref = parse(text, default_tag=False)
            except DockyardError:
                continue
            if ref.tag is not None:
                tags.setdefault(ref.familiar_name, []).append(ref.tag)
        for text in repo_digests:
            try:
                ref = parse(text, default_tag=False)
            except DockyardError:
                continue
            if ref.digest is not None:
                digs.setdefault(ref.familiar_name, []).append(ref.digest)
        for repo, repo_tag_list in tags.items():
            repo_digest_list = digs.pop(repo, [])
            if not digests:
                repo_digest_list = []
            for tag in repo_tag_list:
                if not repo_digest_list:
                    rows.append(ImageContext(img, repo, tag, "<none>", trunc, now))
                    continue
                for dgst in repo_digest_list:
                    rows.append(ImageContext(img, repo, tag, dgst, trunc, now))
        for repo, repo_digest_list in digs.items():
            if digests:
                for dgst in repo_digest_list:
                    rows.append(ImageContext(img, repo, "<none>", dgst, trunc, now))
            else:
                rows.append(ImageContext(img, repo, "<none>", "", trunc, now))
    return rows


# --------------------------------------------------------------------------- Formatter


_SIMPLE_FIELD = re.compile(r"\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def simple_fields(text: str) -> list[tuple[str, bool]] | None:
    """Split a template made only of text and ``{{.Field}}`` actions into
    ``(text, False)``/``(field, True)`` parts; ``None`` for anything richer.

    The common formats (docker's defaults, ``{{.ID}}``) render through this without
    loading the template engine, which keeps ``ps``/``images`` start-up short.
    """
    parts: list[tuple[str, bool]] = []
    pos = 0
    for m in _SIMPLE_FIELD.finditer(text):
        parts.append((text[pos : m.start()], False))
        parts.append((m.group(1), True))
        pos = m.end()
    parts.append((text[pos:], False))
    if any("{{" in t or "}}" in t for t, is_field in parts if not is_field):
        return None
    return [p for p in parts if p[1] or p[0]]


def template_uses(fmt: str, field: str, probe: Any) -> bool:
    """Whether executing ``fmt`` on ``probe`` (a context) reads ``field`` (docker runs the
    template once to decide whether to ask the daemon for sizes).

    Raises ``TemplateError`` (prefixed like docker) when the template is broken.
    """
    simple = simple_fields(fmt)
    if simple is not None and all(
        not is_field or name in getattr(probe, "fields", ()) for name, is_field in simple
    ):
        return any(is_field and name == field for name, is_field in simple)
    from . import gotemplate

    try:
        tmpl = gotemplate.parse(fmt)
    except TemplateError as exc:
        raise TemplateError(f"failed to parse template: {exc}") from exc
    try:
        tmpl.execute(probe)
    except TemplateError as exc:
        raise TemplateError(f"failed to execute template: {exc}") from exc
    return field in getattr(probe, "fields_used", ())


class Formatter:
    """docker's ``formatter.Context``: ``table …`` (header + tabwriter), ``json``, or a
    custom template, one line per item.

    Raises ``TemplateError`` when the format does not parse or execute.
    """

    def __init__(
        self,
        fmt: str,
        headers: Mapping[str, str],
        funcs: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.format = fmt
        self.headers = headers
        self.is_table = fmt.startswith("table")
        final = fmt
        if self.is_table:
            final = fmt[len("table") :]
        elif fmt == "json":
            final = "{{json .}}"
        self.source = final.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
        self.funcs = funcs
        self.simple = simple_fields(self.source) if not funcs else None
        self.template: Any = None
        if self.simple is None:
            self._compile()

    def _compile(self) -> Any:
        if self.template is None:
            from . import gotemplate

            try:
                self.template = gotemplate.parse(self.source, self.funcs)
            except TemplateError as exc:
                raise TemplateError(f"template parsing error: {exc}") from exc
        return self.template

    def _render_simple(self, item: Any, parts: list[tuple[str, bool]]) -> str | None:
        out: list[str] = []
        for text, is_field in parts:
            if not is_field:
                out.append(text)
                continue
            if text not in getattr(item, "fields", ()):
                return None  # let the engine produce Go's error (or method call)
            value = item.template_field(text)
            if not isinstance(value, str):
                return None
            out.append(value)
        return "".join(out)

    def render(self, items: Iterable[Any]) -> str:
        out: list[str] = []
        for item in items:
            line = self._render_simple(item, self.simple) if self.simple is not None else None
            if line is not None:
                out.append(line)
            else:
                try:
                    self._compile().execute_into(out, item)
                except TemplateError as exc:
                    raise TemplateError(f"template parsing error: {exc}") from exc
            out.append("\n")
        body = "".join(out)
        if not self.is_table:
            return body
        header: list[str] = []
        if self.simple is not None:
            for text, is_field in self.simple:
                header.append(self.headers.get(text, "<no value>") if is_field else text)
        else:
            from . import gotemplate

            try:
                self._compile().execute_into(
                    header, HeaderContext(self.headers), funcs=gotemplate.HEADER_FUNCS
                )
            except TemplateError:
                pass  # Go keeps whatever was written before the error
        return tabwrite("".join(header) + "\n" + body)
