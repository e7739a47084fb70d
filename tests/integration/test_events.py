"""``GET /events`` and ``events``: the event log, live streaming and filters, through our
CLI, the docker CLI and the raw API. Every query has an ``--until`` so the streams end."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.parse
from collections.abc import Iterator

import pytest

from tests.integration.daemon import DOCKYARD, TestDaemon

pytestmark = pytest.mark.integration


def _ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return r.stdout


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def lifecycle(daemon: TestDaemon) -> Iterator[tuple[str, str, int, int]]:
    """Run, pause, unpause, rename and remove one labelled container; yield its ID, final
    name and a [since, until] window (whole seconds) around it."""
    since = int(time.time()) - 1
    name = f"evt-{secrets.token_hex(3)}"
    cid = _ok(
        daemon.cli("run", "-d", "--name", name, "--label", "evt.test=yes", "busybox", "sleep", "60")
    ).strip()
    try:
        _ok(daemon.cli("pause", name))
        _ok(daemon.cli("unpause", name))
        _ok(daemon.cli("rename", name, name + "-new"))
        _ok(daemon.cli("rm", "-f", name + "-new"))
    finally:
        daemon.cli("rm", "-f", cid)
    until = int(time.time()) + 1
    time.sleep(max(0.0, until - time.time()) + 0.05)  # the window is in the past now
    yield cid, name + "-new", since, until


EXPECTED = ["create", "start", "pause", "unpause", "rename", "kill", "die", "destroy"]


def test_cli_lists_container_lifecycle(
    lifecycle: tuple[str, str, int, int], daemon: TestDaemon
) -> None:
    cid, name, since, until = lifecycle
    out = _ok(
        daemon.cli(
            "events",
            "--since",
            str(since),
            "--until",
            str(until),
            "--filter",
            f"container={cid}",
            "--format",
            "{{json .}}",
        )
    )
    events = _json_lines(out)
    assert [e["Action"] for e in events] == EXPECTED
    for e in events:
        assert e["Type"] == "container" and e["scope"] == "local"
        assert e["id"] == cid and e["status"] == e["Action"] and e["from"] == "busybox"
        attrs = e["Actor"]["Attributes"]  # type: ignore[index]
        assert attrs["image"] == "busybox" and attrs["evt.test"] == "yes"
    by_action = {e["Action"]: e["Actor"]["Attributes"] for e in events}  # type: ignore[index]
    assert by_action["rename"]["oldName"] == "/" + name.removesuffix("-new")
    assert by_action["rename"]["name"] == name
    assert by_action["kill"]["signal"] == "9"
    assert by_action["die"]["exitCode"] == "137"


def test_cli_default_format(lifecycle: tuple[str, str, int, int], daemon: TestDaemon) -> None:
    cid, name, since, until = lifecycle
    out = _ok(
        daemon.cli(
            "system",
            "events",
            "--since",
            str(since),
            "--until",
            str(until),
            "-f",
            f"container={cid}",
            "-f",
            "event=rename",
        )
    )
    lines = out.splitlines()
    assert len(lines) == 1, out
    stamp, rest = lines[0].split(" ", 1)
    assert len(stamp.split(".")[1]) >= 9 + 1  # 9 fractional digits and a zone
    assert rest == (
        f"container rename {cid} (evt.test=yes, image=busybox, name={name}, "
        f"oldName=/{name.removesuffix('-new')})"
    )


def test_docker_cli_sees_the_same_events(
    lifecycle: tuple[str, str, int, int], daemon: TestDaemon
) -> None:
    cid, name, since, until = lifecycle
    args = ("events", "--since", str(since), "--until", str(until), "--filter", f"container={cid}")
    ours = _ok(daemon.cli(*args))
    theirs = _ok(daemon.docker(*args))
    assert theirs == ours
    actions = [
        json.loads(x)["Action"] for x in _ok(daemon.docker(*args, "--format", "json")).splitlines()
    ]
    assert actions == EXPECTED
    formatted = _ok(
        daemon.docker(*args, "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    )
    assert formatted.splitlines()[0] == f"container create {name.removesuffix('-new')}"


def test_api_filters(lifecycle: tuple[str, str, int, int], daemon: TestDaemon) -> None:
    cid, _name, since, until = lifecycle

    def query(filters: dict[str, list[str]]) -> list[dict[str, object]]:
        q = urllib.parse.urlencode(
            {"since": str(since), "until": str(until), "filters": json.dumps(filters)}
        )
        status, body = daemon.request("GET", f"/v1.44/events?{q}")
        assert status == 200, body
        if isinstance(body, dict):
            return [body]
        if isinstance(body, bytes):
            return _json_lines(body.decode())
        return list(body)

    dies = query({"type": ["container"], "event": ["die"], "container": [cid[:12]]})
    assert [e["Action"] for e in dies] == ["die"]
    assert dies[0]["Actor"]["Attributes"]["exitCode"] == "137"  # type: ignore[index]
    assert isinstance(dies[0]["timeNano"], int) and dies[0]["time"] == dies[0]["timeNano"] // 10**9  # type: ignore[operator]
    labelled = query({"label": ["evt.test=yes"], "event": ["pause", "unpause"]})
    assert [e["Action"] for e in labelled] == ["pause", "unpause"]
    assert query({"label": ["evt.test=no"], "container": [cid]}) == []
    by_image = query({"image": ["busybox"], "container": [cid], "event": ["start"]})
    assert [e["Action"] for e in by_image] == ["start"]
    nets = query({"type": ["network"], "network": ["bridge"], "event": ["connect", "disconnect"]})
    mine = [e for e in nets if e["Actor"]["Attributes"].get("container") == cid]  # type: ignore[index, union-attr]
    assert [e["Action"] for e in mine] == ["connect", "disconnect"]
    status, body = daemon.request(
        "GET", "/v1.44/events?until=1&filters=" + urllib.parse.quote('{"bogus":["x"]}')
    )
    assert status == 400 and b"invalid filter 'bogus'" in json.dumps(body).encode()
    status, _ = daemon.request("GET", f"/v1.44/events?since={until}&until={since}")
    assert status == 400


def test_live_stream_volumes_images_networks(daemon: TestDaemon) -> None:
    vol = f"evt-{secrets.token_hex(3)}"
    net = f"evtnet-{secrets.token_hex(3)}"
    tag = f"evt-{secrets.token_hex(3)}:x"
    proc = subprocess.Popen(
        [
            DOCKYARD,
            "events",
            "--format",
            '{{.Type}} {{.Action}} {{if eq .Type "volume"}}{{.Actor.ID}}{{else}}{{.Actor.Attributes.name}}{{end}}',
            "--filter",
            "type=volume",
            "--filter",
            "type=image",
            "--filter",
            "type=network",
        ],
        env=daemon.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)  # subscribed
        _ok(daemon.cli("volume", "create", vol))
        _ok(daemon.cli("volume", "rm", vol))
        _ok(daemon.cli("tag", "busybox", tag))
        _ok(daemon.cli("rmi", tag))
        _ok(daemon.cli("network", "create", net))
        _ok(daemon.cli("network", "rm", net))
        time.sleep(0.5)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    lines = [
        line
        for line in out.splitlines()
        if vol in line or net in line or tag in line or "untag" in line
    ]
    assert lines == [
        f"volume create {vol}",
        f"volume destroy {vol}",
        f"image tag {tag}",
        lines[3],  # untag: its name is the image ID
        f"network create {net}",
        f"network destroy {net}",
    ], (out, err)
    assert lines[3].startswith("image untag sha256:")


def test_until_in_the_future_ends_the_stream(daemon: TestDaemon) -> None:
    start = time.monotonic()
    r = daemon.cli("events", "--until", "2s", "--filter", "type=daemon")
    assert r.returncode == 0, r.stderr
    # "2s" is a duration back from now: already past, so the stream ends at once
    assert time.monotonic() - start < 10
    until = f"{time.time() + 1.5:.3f}"
    start = time.monotonic()
    r = daemon.docker("events", "--until", until, "--filter", "type=daemon")
    assert r.returncode == 0, r.stderr
    assert 1.0 <= time.monotonic() - start < 10


def test_builder_prune(daemon: TestDaemon) -> None:
    # the shared daemon may hold cache from earlier builds: empty it first
    first = daemon.cli("builder", "prune", "-f")
    assert first.returncode == 0, first.stderr
    assert "Total reclaimed space: " in first.stdout
    ours = daemon.cli("builder", "prune", "-f")
    theirs = daemon.docker("builder", "prune", "-f")
    assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
    assert ours.stdout == theirs.stdout
    assert ours.stdout.endswith("Total reclaimed space: 0B\n")
    ours = daemon.cli("builder", "prune", "-a", input=b"n\n")
    theirs = daemon.docker("builder", "prune", "-a", input=b"n\n")
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout == theirs.stdout
    assert ours.stdout.startswith("WARNING! This will remove all build cache.")
    r = daemon.cli("builder", "prune", "-f", "--filter", "bogus")
    assert r.returncode == 125 and "bad format of filter" in r.stderr


def test_operation_and_volume_events(daemon: TestDaemon, tmp_path: object) -> None:
    """top, update, cp both ways, export, commit (container) and mount/unmount (volume)."""
    since = int(time.time()) - 1
    name = f"ops-{secrets.token_hex(3)}"
    vol = f"vol-{secrets.token_hex(3)}"
    cid = _ok(daemon.cli("run", "-d", "--name", name, "-v", f"{vol}:/data:ro", "busybox",
                         "sleep", "60")).strip()  # fmt: skip
    try:
        _ok(daemon.cli("top", name))
        _ok(daemon.docker("update", "--cpu-shares", "512", name))
        _ok(daemon.cli("cp", f"{name}:/etc/hostname", "-"))
        _ok(daemon.docker("cp", "/etc/hostname", f"{name}:/tmp/"))
        assert daemon.cli("export", name).returncode == 0
        tag = f"evt-commit-{secrets.token_hex(3)}:v1"
        image_id = _ok(daemon.cli("commit", "-m", "snap", name, tag)).strip()
        _ok(daemon.cli("stop", "-t", "0", name))
    finally:
        daemon.cli("rm", "-f", cid)
        daemon.cli("volume", "rm", vol)
    until = int(time.time()) + 1
    time.sleep(max(0.0, until - time.time()) + 0.05)
    window = ("--since", str(since), "--until", str(until), "--format", "{{json .}}")
    events = _json_lines(_ok(daemon.cli("events", *window, "-f", f"container={cid}")))
    actions = [e["Action"] for e in events]
    for wanted in ("top", "update", "archive-path", "extract-to-dir", "export", "commit"):
        assert wanted in actions, actions
    commit = next(e for e in events if e["Action"] == "commit")
    attrs = commit["Actor"]["Attributes"]  # type: ignore[index]
    assert attrs["comment"] == "snap" and attrs["imageID"] == image_id
    assert attrs["imageRef"] == tag
    vol_events = _json_lines(_ok(daemon.cli("events", *window, "-f", f"volume={vol}")))
    assert [e["Action"] for e in vol_events] == ["create", "mount", "unmount", "destroy"]
    mount = vol_events[1]["Actor"]["Attributes"]  # type: ignore[index]
    assert mount == {
        "driver": "local",
        "container": cid,
        "destination": "/data",
        "read/write": "false",
        "propagation": "",
    }
    assert vol_events[2]["Actor"]["Attributes"] == {"driver": "local", "container": cid}  # type: ignore[index]
    # the docker CLI prints the same lines
    plain = ("--since", str(since), "--until", str(until), "-f", f"volume={vol}")
    assert _ok(daemon.docker("events", *plain)) == _ok(daemon.cli("events", *plain))
