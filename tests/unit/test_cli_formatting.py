"""Rendering exactly as the docker CLI does: tabwriter, units, columns, JSON, progress."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from dockyard.cli.formatting import (
    CONTAINER_HEADERS,
    IMAGE_HEADERS,
    ContainerContext,
    Formatter,
    bytes_size,
    displayable_ports,
    ellipsis,
    go_duration,
    human_duration,
    human_size,
    image_rows,
    json_compact,
    json_indent,
    tabwrite,
    truncate_id,
)
from dockyard.cli.progress import JSONMessageError, display_messages, progress_string

pytestmark = pytest.mark.unit

# (input, Go tabwriter(10,1,3,' ',0), Go tabwriter(20,1,1,' ',0)) from Go 1.19's text/tabwriter
TABWRITER_CASES = [
    (
        "CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox\tw1\n",
        "CONTAINER ID   IMAGE     NAMES\nabc            busybox   w1\n",
        "CONTAINER ID        IMAGE               NAMES\nabc                 busybox             w1\n",
    ),
    (
        "A\tB\tC\nlonger cell here\tx\ty\nshort\n1\t2\t3\t4\n",
        "A                  B         C\nlonger cell here   x         y\nshort\n1         2         3"
        "         4\n",
        "A                   B                   C\nlonger cell here    x                   y\nshort\n"
        "1                   2                   3                   4\n",
    ),
    (
        "a\tb\n\nc\td\n",
        "a         b\n\nc         d\n",
        "a                   b\n\nc                   d\n",
    ),
    ("x\ty\tz", "x         y         z", "x                   y                   z"),
    (
        "é…\tb\nab\tc\n",
        "é…        b\nab        c\n",
        "é…                  b\nab                  c\n",
    ),
    (
        "\t\tz\nq\t\t\n",
        "                    z\nq                   \n",
        "                                        z\nq                                       \n",
    ),
]


@pytest.mark.parametrize(("text", "table", "version_style"), TABWRITER_CASES)
def test_tabwrite_matches_go(text: str, table: str, version_style: str) -> None:
    assert tabwrite(text) == table
    assert tabwrite(text, minwidth=20, padding=1) == version_style


@pytest.mark.parametrize(
    ("size", "precision", "text"),
    [
        (0, 3, "0B"),
        (999, 3, "999B"),
        (1000, 3, "1kB"),
        (1984000, 3, "1.98MB"),
        (1984000, 4, "1.984MB"),
        (4262000, 3, "4.26MB"),
        (999999, 3, "1e+03kB"),
        (5 * 10**12, 3, "5TB"),
    ],
)
def test_human_size(size: int, precision: int, text: str) -> None:
    assert human_size(size, precision) == text


def test_bytes_size() -> None:
    assert bytes_size(25276063744) == "23.54GiB"
    assert bytes_size(1024) == "1KiB"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "Less than a second"),
        (-3, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (5399, "About an hour"),
        (5400, "2 hours"),
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (14 * 86400, "2 weeks"),
        (60 * 86400, "2 months"),
        (2 * 365 * 86400, "2 years"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_go_duration() -> None:
    assert [go_duration(s) for s in (0, 45, 90, 3723)] == ["0s", "45s", "1m30s", "1h2m3s"]


@pytest.mark.parametrize(
    ("text", "width", "out"),
    [
        ("sleep 300", 20, "sleep 300"),
        ("sh -c 'echo out; echo err >&2; sleep 300'", 20, "sh -c 'echo out; ec…"),
        ("12345678901234567890", 20, "12345678901234567890"),
        ("123456789012345678901", 20, "1234567890123456789…"),
        ("日本語のコマンドです", 10, "日本語の…"),
    ],
)
def test_ellipsis(text: str, width: int, out: str) -> None:
    assert ellipsis(text, width) == out


def test_truncate_id() -> None:
    assert truncate_id("sha256:6fc5bf6b4077214baf497240008c") == "6fc5bf6b4077"
    assert truncate_id("39864622c2d772c7a1bd") == "39864622c2d7"


@pytest.mark.parametrize(
    ("ports", "text"),
    [
        ([], ""),
        (
            [{"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 18941, "Type": "tcp"}],
            "127.0.0.1:18941->80/tcp",
        ),
        (
            [{"PrivatePort": 443, "Type": "tcp"}, {"PrivatePort": 80, "Type": "tcp"}],
            "80/tcp, 443/tcp",
        ),
        (
            [{"PrivatePort": p, "Type": "tcp"} for p in (8000, 8001, 8002, 9000)],
            "8000-8002/tcp, 9000/tcp",
        ),
        (
            [{"IP": "0.0.0.0", "PrivatePort": p, "PublicPort": p, "Type": "tcp"} for p in (80, 81)],
            "0.0.0.0:80-81->80-81/tcp",
        ),
        (
            [
                {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"PrivatePort": 53, "Type": "udp"},
            ],
            "53/udp, [::]:8080->80/tcp",
        ),
    ],
)
def test_displayable_ports(ports: list[dict[str, Any]], text: str) -> None:
    assert displayable_ports(ports) == text


def test_json_indent_and_compact_keep_raw_strings() -> None:
    raw = '[{"Id":"a","Args":[],"Env":{},"Cmd":["x \\u003c y"],"N":null,"F":1.50}\n]'
    assert json_indent(raw) == (
        '[\n    {\n        "Id": "a",\n        "Args": [],\n        "Env": {},\n'
        '        "Cmd": [\n            "x \\u003c y"\n        ],\n        "N": null,\n'
        '        "F": 1.50\n    }\n]'
    )
    assert json_compact('[ {"a" : "b c", "d":[1, 2]} ]') == '[{"a":"b c","d":[1,2]}]'


NOW = 1_800_000_000.0

CONTAINER = {
    "Id": "39864622c2d772c7a1bd04558d3cb27f5753da264432d7a25ee00c66d4a2f318",
    "Names": ["/w2"],
    "Image": "busybox",
    "ImageID": "sha256:6fc5bf6b4077214baf497240008ceaf652d31db8efe4c278cae7f2be9dde8d04",
    "Command": "sh -c 'echo out; echo err >&2; sleep 300'",
    "Created": int(NOW) - 125,
    "Ports": [],
    "Labels": {"b": "2", "a": "1"},
    "State": "running",
    "Status": "Up 2 minutes",
    "SizeRw": 0,
    "SizeRootFs": 1984000,
    "NetworkSettings": {"Networks": {"bridge": {}, "alpha": {}}},
    "Mounts": [{"Name": "averyveryverylongvolumename", "Driver": "local"}, {"Source": "/src"}],
}

DEFAULT_PS = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
)


def test_ps_default_table() -> None:
    out = Formatter(DEFAULT_PS, CONTAINER_HEADERS).render([ContainerContext(CONTAINER, now=NOW)])
    assert out == (
        "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS"
        "     NAMES\n"
        '39864622c2d7   busybox   "sh -c \'echo out; ec…"   2 minutes ago   Up 2 minutes'
        "             w2\n"
    )


def test_ps_empty_table_is_just_the_header() -> None:
    out = Formatter(DEFAULT_PS, CONTAINER_HEADERS).render([])
    assert out == "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"


def test_ps_json_format_has_docker_keys() -> None:
    out = Formatter("json", CONTAINER_HEADERS).render([ContainerContext(CONTAINER, now=NOW)])
    assert out == (
        '{"Command":"\\"sh -c \'echo out; ec…\\"","CreatedAt":"'
        + ContainerContext(CONTAINER).f_CreatedAt()
        + '","ID":"39864622c2d7","Image":"busybox","Labels":"a=1,b=2","LocalVolumes":"1",'
        '"Mounts":"averyveryveryl…,/src","Names":"w2","Networks":"alpha,bridge",'
        '"Platform":null,"Ports":"","RunningFor":"2 minutes ago",'
        '"Size":"0B (virtual 1.98MB)","State":"running","Status":"Up 2 minutes"}\n'
    )


def test_ps_custom_table_with_label_header() -> None:
    fmt = 'table {{.ID}}\\t{{.Label "com.example.some-thing"}}\\t{{json .Names}}'
    out = Formatter(fmt, CONTAINER_HEADERS).render([ContainerContext(CONTAINER, now=NOW)])
    assert out == 'CONTAINER ID   some thing   NAMES\n39864622c2d7                "w2"\n'


def test_ps_no_trunc_and_image_by_id() -> None:
    row = dict(CONTAINER, Image="6fc5bf6b4077214b", Names=["/w2", "/other/link"])
    ctx = ContainerContext(row, trunc=True, now=NOW)
    assert ctx.f_Image() == "6fc5bf6b4077"
    assert ctx.f_Names() == "w2"
    full = ContainerContext(row, trunc=False, now=NOW)
    assert full.f_Names() == "w2,other/link"
    assert full.f_ID() == CONTAINER["Id"]
    digest_ref = dict(CONTAINER, Image="docker.io/library/busybox:1@sha256:" + "a" * 64)
    assert ContainerContext(digest_ref, now=NOW).f_Image() == "busybox:1"


IMAGE = {
    "Id": "sha256:6fc5bf6b4077214baf497240008ceaf652d31db8efe4c278cae7f2be9dde8d04",
    "RepoTags": ["busybox:latest", "127.0.0.1:5921/busybox:v1"],
    "RepoDigests": ["127.0.0.1:5921/busybox@sha256:" + "b" * 64],
    "Created": 1704067200,
    "Size": 1984000,
    "SharedSize": -1,
    "Containers": -1,
}


def test_images_rows_and_default_table() -> None:
    rows = image_rows(
        [IMAGE, {"Id": "sha256:" + "c" * 64, "Created": 0, "Size": 0}],
        digests=False,
        trunc=True,
        now=NOW,
    )
    assert [(r.repo, r.tag, r.digest) for r in rows] == [
        ("busybox", "latest", "<none>"),
        ("127.0.0.1:5921/busybox", "v1", "<none>"),
        ("<none>", "<none>", "<none>"),
    ]
    fmt = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    assert Formatter(fmt, IMAGE_HEADERS).render(rows[:1]) == (
        "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n"
        "busybox      latest    6fc5bf6b4077   3 years ago   1.98MB\n"
    )


def test_images_with_digests() -> None:
    rows = image_rows([IMAGE], digests=True, trunc=True, now=NOW)
    assert [(r.repo, r.tag, r.digest) for r in rows] == [
        ("busybox", "latest", "<none>"),
        ("127.0.0.1:5921/busybox", "v1", "sha256:" + "b" * 64),
    ]


def test_images_json_format() -> None:
    rows = image_rows([IMAGE], digests=False, trunc=True, now=NOW)
    assert Formatter("json", IMAGE_HEADERS).render(rows[:1]) == (
        '{"Containers":"N/A","CreatedAt":"' + rows[0].f_CreatedAt() + '",'
        '"CreatedSince":"3 years ago","Digest":"\\u003cnone\\u003e","ID":"6fc5bf6b4077",'
        '"Repository":"busybox","SharedSize":"N/A","Size":"1.98MB","Tag":"latest",'
        '"UniqueSize":"N/A","VirtualSize":"1.984MB"}\n'
    )


# --------------------------------------------------------------------------- progress

PULL = [
    {"status": "Pulling from library/busybox", "id": "latest"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "581cdebca008"},
    {
        "status": "Downloading",
        "progressDetail": {"current": 65536, "total": 4066162},
        "progress": "[>   ]  65.54kB/4.066MB",
        "id": "581cdebca008",
    },
    {"status": "Pull complete", "progressDetail": {}, "id": "581cdebca008"},
    {"status": "Digest: sha256:75f5"},
    {"status": "Status: Downloaded newer image for busybox:latest"},
]


def test_progress_off_a_terminal_is_one_line_per_message() -> None:
    out = io.StringIO()
    display_messages(PULL, out, is_terminal=False)
    assert out.getvalue() == (
        "latest: Pulling from library/busybox\n"
        "581cdebca008: Pulling fs layer\n"
        "581cdebca008: Pull complete\n"
        "Digest: sha256:75f5\n"
        "Status: Downloaded newer image for busybox:latest\n"
    )


def test_progress_on_a_terminal_rewrites_lines_in_place() -> None:
    out = io.StringIO()
    display_messages(PULL[:3], out, is_terminal=True, width=80)
    assert out.getvalue() == (
        "latest: Pulling from library/busybox\n"
        "\n\x1b[1A\x1b[2K\r581cdebca008: Pulling fs layer \r\x1b[1B"
        "\x1b[1A\x1b[2K\r581cdebca008: Downloading  65.54kB/4.066MB\r\x1b[1B"
    )


def test_progress_bar_on_wide_terminals() -> None:
    detail = {"current": 2033081, "total": 4066162}
    assert (
        progress_string(detail, 120)
        == "[=========================>" + " " * 25 + "]  2.033MB/4.066MB"
    )
    assert progress_string({"current": 5, "units": "items"}, 80) == "5 items"


def test_stream_messages_and_errors() -> None:
    out = io.StringIO()
    with pytest.raises(JSONMessageError) as info:
        display_messages(
            [
                {"stream": "Step 1/2\n"},
                {"errorDetail": {"code": 42, "message": "boom"}, "error": "boom"},
            ],
            out,
            is_terminal=False,
        )
    assert out.getvalue() == "Step 1/2\n"
    assert (info.value.message, info.value.code) == ("boom", 42)


@pytest.mark.parametrize(
    "fmt",
    [
        DEFAULT_PS,
        "{{.ID}}",
        "table {{ .Names }}\\t{{.Size}}",
        "json",
        'table {{.ID}}\\t{{.Label "a"}}',
        "{{.Names}} {{.Nope}}",
    ],
)
def test_simple_formats_render_like_the_template_engine(fmt: str) -> None:
    from dockyard.cli.gofmt import TemplateError

    fast = Formatter(fmt, CONTAINER_HEADERS)
    slow = Formatter(fmt, CONTAINER_HEADERS)
    slow.simple = None
    rows = [ContainerContext(CONTAINER, now=NOW)]
    try:
        expected = slow.render(rows)
    except TemplateError as exc:
        with pytest.raises(TemplateError, match=re.escape(str(exc))):
            fast.render(rows)
        return
    assert fast.render(rows) == expected


def test_default_ps_does_not_load_the_template_engine() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from dockyard.cli.formatting import Formatter, ContainerContext, CONTAINER_HEADERS\n"
        f"Formatter({DEFAULT_PS!r}, CONTAINER_HEADERS).render([ContainerContext({{}})])\n"
        "print('dockyard.cli.gotemplate' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
