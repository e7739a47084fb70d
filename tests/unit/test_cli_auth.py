"""``dockyard login/logout/push`` and the credentials pull, push and run send, against the
in-test fake daemon; output and exit codes as measured with the docker CLI 28.2.2.

Every test gets its own ``DOCKER_CONFIG`` and a PATH holding only the fake credential
helpers (``tests/unit/test_docker_config.py``), so nothing on the machine leaks in.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import pty
import select
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.cli.main import main
from dockyard.cli.progress import display_messages
from tests.unit.test_client_api import FakeDaemon, Reply, Request, error_reply, json_reply
from tests.unit.test_docker_config import Helper, install_helpers

pytestmark = pytest.mark.unit

REGISTRY = "127.0.0.1:5921"
INDEX = "https://index.docker.io/v1/"
REFUSED = f"login attempt to http://{REGISTRY}/v2/ failed with status: 401 Unauthorized"
UNENCRYPTED = (
    "\nWARNING! Your credentials are stored unencrypted in '{path}'.\n"
    "Configure a credential helper to remove this warning. See\n"
    "https://docs.docker.com/go/credential-store/\n\n"
)
PASSWORD_WARNING = "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[FakeDaemon]:
    with FakeDaemon(tmp_path) as fake:
        yield fake
        _stop_accepting(fake)


def _stop_accepting(fake: FakeDaemon) -> None:
    """End the fake's accept thread before its socket closes.

    ``FakeDaemon.__exit__`` closes the listening socket under a thread that may be about to
    call ``accept`` on its descriptor number; the next test's fake can get that number, and
    the old thread then answers the new test's requests with old routes (seen under load).
    One connection after ``_stopped`` is set lets the thread leave its loop.
    """
    fake._stopped = True
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as poke:
        poke.connect(fake.path)
    for thread in fake._threads[:1]:
        thread.join(5)


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "docker-config"
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    monkeypatch.delenv("DOCKYARD_CONFIG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    return directory


@pytest.fixture
def helper(tmp_path: Path, cfg: Path, monkeypatch: pytest.MonkeyPatch) -> Helper:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    return install_helpers(tmp_path / "bin", monkeypatch)


def run(
    daemon: FakeDaemon,
    capsys: pytest.CaptureFixture[str],
    *args: str,
    stdin: str = "",
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> tuple[int, str, str]:
    if monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(["-H", daemon.host, *args])
    out, err = capsys.readouterr()
    return code, out, err


def api(daemon: FakeDaemon) -> list[str]:
    return [line for line in daemon.lines() if not line.startswith("HEAD /_ping")]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def header_of(request: Request) -> dict[str, Any]:
    value = request.headers["x-registry-auth"]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(value))
    return decoded


def accept_login(users: dict[str, str], token: str = "") -> Any:
    def handler(request: Request) -> Reply:
        body = request.json()
        if users.get(body.get("username")) == body.get("password") or (
            body.get("identitytoken") and body.get("identitytoken") == token
        ):
            return json_reply({"IdentityToken": token, "Status": "Login Succeeded"})
        return error_reply(401, REFUSED)

    return handler


def stream_reply(messages: list[dict[str, Any]]) -> Reply:
    return Reply(
        200,
        headers={"Content-Type": "application/json"},
        chunks=[json.dumps(m).encode() + b"\r\n" for m in messages],
    )


def saved(cfg: Path) -> Any:
    return json.loads((cfg / "config.json").read_text())


# --------------------------------------------------------------------------- login


def test_login_with_password_stdin_stores_base64_credentials(
    daemon: FakeDaemon,
    cfg: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    daemon.on("POST", "/auth", accept_login({"testuser": "testpass"}))
    code, out, err = run(
        daemon,
        capsys,
        "login",
        "-u",
        "testuser",
        "--password-stdin",
        REGISTRY,
        stdin="testpass\n",
        monkeypatch=monkeypatch,
    )
    assert (code, out) == (0, "Login Succeeded\n")
    assert err == UNENCRYPTED.format(path=cfg / "config.json")
    assert api(daemon) == ["POST /v1.44/auth"]
    request = daemon.requests[-1]
    assert request.headers["content-type"] == "application/json"
    assert request.body == (
        b'{"username":"testuser","password":"testpass","serveraddress":"127.0.0.1:5921"}'
    )
    assert saved(cfg) == {"auths": {REGISTRY: {"auth": "dGVzdHVzZXI6dGVzdHBhc3M="}}}
    assert stat.S_IMODE((cfg / "config.json").stat().st_mode) == 0o600

    # Same credentials again: nothing rewritten, so no warning.
    code, out, err = run(daemon, capsys, "login", "-u", "testuser", "-p", "testpass", REGISTRY)
    assert (code, out, err) == (0, "Login Succeeded\n", PASSWORD_WARNING)


def test_login_refused_keeps_old_credentials_and_uses_dockers_wording(
    daemon: FakeDaemon, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("POST", "/auth", accept_login({"alice": "right"}))
    assert run(daemon, capsys, "login", "-u", "alice", "-p", "right", REGISTRY)[0] == 0
    before = saved(cfg)
    code, out, err = run(daemon, capsys, "login", "-u", "alice", "-p", "wrong", REGISTRY)
    assert (code, out) == (1, "")
    assert err == PASSWORD_WARNING + f"Error response from daemon: {REFUSED}\n"
    assert saved(cfg) == before


def test_login_flag_errors(
    daemon: FakeDaemon,
    cfg: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(daemon, capsys, "login", "-p", "x", "--password-stdin", REGISTRY) == (
        1,
        "",
        PASSWORD_WARNING
        + "conflicting options: cannot specify both --password and --password-stdin\n",
    )
    assert run(daemon, capsys, "login", "--password-stdin", REGISTRY) == (
        1,
        "",
        "the --password-stdin option requires --username to be set\n",
    )
    assert run(daemon, capsys, "login", "-u", "alice", REGISTRY, monkeypatch=monkeypatch) == (
        1,
        "",
        "Error: Cannot perform an interactive login from a non TTY device\n",
    )
    assert run(daemon, capsys, "login", "a", "b") == (
        1,
        "",
        "dockyard: 'dockyard login' requires at most 1 argument\n\n"
        "Usage:  dockyard login [OPTIONS] [SERVER]\n\n"
        "Run 'dockyard login --help' for more information\n",
    )
    assert api(daemon) == []


def test_login_reuses_stored_credentials(
    daemon: FakeDaemon,
    cfg: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    daemon.on("POST", "/auth", accept_login({"alice": "pw"}))
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"auths": {REGISTRY: {"auth": b64("alice:pw")}}}))
    code, out, err = run(daemon, capsys, "login", f"http://{REGISTRY}/v2/", monkeypatch=monkeypatch)
    assert (code, out) == (0, "Login Succeeded\n")
    assert err == (
        "Authenticating with existing credentials... [Username: alice]\n\n"
        " Info -> To login with a different account, run 'dockyard logout' followed by "
        "'dockyard login'\n\n\n"
    )
    assert json.loads(daemon.requests[-1].body) == {
        "username": "alice",
        "password": "pw",
        "serveraddress": REGISTRY,
    }

    # Stored credentials that no longer work: then it needs a terminal to ask.
    (cfg / "config.json").write_text(json.dumps({"auths": {REGISTRY: {"auth": b64("alice:x")}}}))
    code, out, err = run(daemon, capsys, "login", REGISTRY, monkeypatch=monkeypatch)
    assert (code, out) == (1, "")
    assert err.endswith(
        "Stored credentials invalid or expired\n"
        "Error: Cannot perform an interactive login from a non TTY device\n"
    )


def test_login_to_docker_hub_uses_the_index_server_key(
    daemon: FakeDaemon, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("POST", "/auth", accept_login({"hubuser": "pw"}))
    for server in ([], ["docker.io"]):
        code, out, _ = run(daemon, capsys, "login", "-u", "hubuser", "-p", "pw", *server)
        assert (code, out) == (0, "Login Succeeded\n")
        assert json.loads(daemon.requests[-1].body)["serveraddress"] == INDEX
    assert saved(cfg) == {"auths": {INDEX: {"auth": b64("hubuser:pw")}}}


def test_login_stores_an_identity_token_instead_of_the_password(
    daemon: FakeDaemon, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("POST", "/auth", accept_login({"alice": "pw"}, token="refresh-1"))
    code, out, err = run(daemon, capsys, "login", "-u", "alice", "-p", "pw", REGISTRY)
    assert (code, out, err) == (0, "Login Succeeded\n", PASSWORD_WARNING)  # no password kept
    assert saved(cfg) == {
        "auths": {REGISTRY: {"auth": b64("alice:"), "identitytoken": "refresh-1"}}
    }


def test_login_with_a_creds_store_keeps_the_secret_in_the_helper(
    daemon: FakeDaemon, cfg: Path, helper: Helper, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"credsStore": "fake"}))
    daemon.on("POST", "/auth", accept_login({"alice": "pw"}))
    code, out, err = run(daemon, capsys, "login", "-u", "alice", "-p", "pw", REGISTRY)
    assert (code, out, err) == (0, "Login Succeeded\n", PASSWORD_WARNING)
    assert helper.secrets == {REGISTRY: {"Username": "alice", "Secret": "pw"}}
    assert saved(cfg) == {"credsStore": "fake", "auths": {REGISTRY: {}}}


def test_login_reports_a_failing_helper(
    daemon: FakeDaemon, cfg: Path, helper: Helper, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"credHelpers": {REGISTRY: "broken"}}))
    daemon.on("POST", "/auth", accept_login({"alice": "pw"}))
    code, out, err = run(daemon, capsys, "login", "-u", "alice", "-p", "pw", REGISTRY)
    assert (code, out) == (1, "")
    assert err == PASSWORD_WARNING + (
        "Error saving credentials: error storing credentials - err: exit status 3, "
        "out: `the keyring is locked`\n"
    )


def test_a_broken_config_file_is_reported_and_replaced_on_login(
    daemon: FakeDaemon, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg.mkdir()
    (cfg / "config.json").write_text("{bad")
    daemon.on("POST", "/auth", accept_login({"alice": "pw"}))
    code, out, err = run(daemon, capsys, "login", "-u", "alice", "-p", "pw", REGISTRY)
    assert (code, out) == (0, "Login Succeeded\n")
    assert err.startswith(
        PASSWORD_WARNING + f"WARNING: Error parsing config file ({cfg / 'config.json'}): "
    )
    assert saved(cfg) == {"auths": {REGISTRY: {"auth": b64("alice:pw")}}}


def test_global_config_flag_wins_over_the_environment(
    daemon: FakeDaemon, cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("POST", "/auth", accept_login({"alice": "pw"}))
    other = tmp_path / "flagged"
    code = main(
        ["--config", str(other), "-H", daemon.host, "login", "-u", "alice", "-p", "pw", REGISTRY]
    )
    capsys.readouterr()
    assert code == 0
    assert saved(other)["auths"] == {REGISTRY: {"auth": b64("alice:pw")}}
    assert not cfg.exists()


# --------------------------------------------------------------------------- logout


def test_logout_erases_every_spelling_without_any_request(
    daemon: FakeDaemon, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg.mkdir()
    (cfg / "config.json").write_text(
        json.dumps(
            {
                "auths": {
                    REGISTRY: {"auth": b64("a:b")},
                    f"http://{REGISTRY}": {"auth": b64("c:d")},
                    "keep:1": {"auth": b64("e:f")},
                },
                "psFormat": "x",
            }
        )
    )
    assert run(daemon, capsys, "logout", f"https://{REGISTRY}/v2/") == (
        0,
        f"Removing login credentials for {REGISTRY}\n",
        "",
    )
    assert saved(cfg) == {"auths": {"keep:1": {"auth": b64("e:f")}}, "psFormat": "x"}
    # Not logged in: docker (20.10 and 28) says the same and exits 0.
    assert run(daemon, capsys, "logout", REGISTRY) == (
        0,
        f"Removing login credentials for {REGISTRY}\n",
        "",
    )
    assert run(daemon, capsys, "logout") == (0, f"Removing login credentials for {INDEX}\n", "")
    assert daemon.requests == []  # not even /_ping


def test_logout_through_a_helper(
    daemon: FakeDaemon, cfg: Path, helper: Helper, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"credsStore": "fake"}))
    daemon.on("POST", "/auth", accept_login({"alice": "pw"}))
    assert run(daemon, capsys, "login", "-u", "alice", "-p", "pw", REGISTRY)[0] == 0
    assert run(daemon, capsys, "logout", REGISTRY) == (
        0,
        f"Removing login credentials for {REGISTRY}\n",
        "",
    )
    assert helper.secrets == {}
    assert saved(cfg) == {"credsStore": "fake", "auths": {}}
    erased = [data for action, data in helper.calls if action == "erase"]
    # docker 28 erases REGISTRY twice (the typed name and its hostname); once is enough.
    assert erased == [REGISTRY, f"http://{REGISTRY}", f"https://{REGISTRY}"]


def test_logout_warns_when_nothing_could_be_erased(
    daemon: FakeDaemon, cfg: Path, helper: Helper, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"auths": {"h:1": {}}, "credsStore": "broken"}))
    code, out, err = run(daemon, capsys, "logout", "h:1")
    assert (code, out) == (0, "Removing login credentials for h:1\n")
    failure = "error erasing credentials - err: exit status 3, out: `the keyring is locked`"
    assert err == (
        "WARNING: could not erase credentials:\n"
        f"h:1: {failure}\nhttp://h:1: {failure}\nhttps://h:1: {failure}\n"
    )
    assert saved(cfg)["auths"] == {"h:1": {}}


# --------------------------------------------------------------------------- credentials sent


def test_pull_push_and_run_send_the_stored_credentials(
    daemon: FakeDaemon, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg.mkdir()
    (cfg / "config.json").write_text(
        json.dumps(
            {
                "auths": {
                    REGISTRY: {"auth": b64("alice:pw")},
                    INDEX: {"auth": b64("hub:hubpw")},
                }
            }
        )
    )
    done = [{"status": "Status: Image is up to date"}]
    daemon.on("POST", "/images/create", stream_reply(done))
    daemon.on("POST", "/images/.+/push", stream_reply(done))
    daemon.on("POST", "/containers/create", error_reply(404, "No such image"))

    run(daemon, capsys, "pull", f"{REGISTRY}/app:1")
    assert header_of(daemon.requests[-1]) == {
        "username": "alice",
        "password": "pw",
        "serveraddress": REGISTRY,
    }
    run(daemon, capsys, "pull", "busybox")
    assert header_of(daemon.requests[-1]) == {
        "username": "hub",
        "password": "hubpw",
        "serveraddress": INDEX,
    }
    run(daemon, capsys, "push", f"{REGISTRY}/app:1")
    assert header_of(daemon.requests[-1])["username"] == "alice"
    run(daemon, capsys, "run", "--rm", f"{REGISTRY}/app:1", "true")
    pulls = [r for r in daemon.requests if r.path.endswith("/images/create")]
    assert header_of(pulls[-1])["username"] == "alice"
    run(daemon, capsys, "create", "--pull", "always", "other.example:5000/x")
    assert daemon.requests[-2].path.endswith("/images/create")
    assert daemon.requests[-2].headers["x-registry-auth"] == "e30="


def test_credentials_from_a_helper_are_sent(
    daemon: FakeDaemon, cfg: Path, helper: Helper, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"auths": {REGISTRY: {}}, "credsStore": "fake"}))
    (helper.dir / "fake-secrets.json").write_text(
        json.dumps({REGISTRY: {"Username": "<token>", "Secret": "refresh"}})
    )
    daemon.on("POST", "/images/create", stream_reply([]))
    assert run(daemon, capsys, "pull", "-q", f"{REGISTRY}/app:1")[0] == 0
    assert header_of(daemon.requests[-1]) == {
        "serveraddress": REGISTRY,
        "identitytoken": "refresh",
    }
    assert helper.calls == [["get", REGISTRY]]


def test_a_failing_helper_means_anonymous_as_in_docker(
    daemon: FakeDaemon, cfg: Path, helper: Helper, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"credsStore": "broken"}))
    daemon.on("POST", "/images/create", stream_reply([]))
    code, _, err = run(daemon, capsys, "pull", f"{REGISTRY}/app:1")
    assert (code, err) == (0, "")
    assert daemon.requests[-1].headers["x-registry-auth"] == "e30="


# --------------------------------------------------------------------------- push


PUSH_MESSAGES: list[dict[str, Any]] = [
    {"status": "The push refers to repository [127.0.0.1:5921/busybox]"},
    {"status": "Preparing", "progressDetail": {}, "id": "6b198961a051"},
    {"status": "Preparing", "progressDetail": {}, "id": "0a1b2c3d4e5f"},
    {"status": "Waiting", "progressDetail": {}, "id": "0a1b2c3d4e5f"},
    {
        "status": "Pushing",
        "progressDetail": {"current": 39424, "total": 1982360},
        "progress": "[>    ]  39.42kB/1.982MB",
        "id": "6b198961a051",
    },
    {"status": "Pushed", "progressDetail": {}, "id": "6b198961a051"},
    {"status": "Mounted from library/busybox", "progressDetail": {}, "id": "0a1b2c3d4e5f"},
    {"status": "latest: digest: sha256:1da70b6c size: 527"},
    {"progressDetail": {}, "aux": {"Tag": "latest", "Digest": "sha256:1da70b6c", "Size": 527}},
]


def test_push_prints_final_states_line_by_line_off_a_terminal(
    daemon: FakeDaemon, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("POST", "/images/.+/push", stream_reply(PUSH_MESSAGES))
    code, out, err = run(daemon, capsys, "push", f"{REGISTRY}/busybox")
    assert (code, err) == (0, "")
    assert out == (
        "Using default tag: latest\n"
        "The push refers to repository [127.0.0.1:5921/busybox]\n"
        "6b198961a051: Preparing\n"
        "0a1b2c3d4e5f: Preparing\n"
        "0a1b2c3d4e5f: Waiting\n"
        "6b198961a051: Pushed\n"
        "0a1b2c3d4e5f: Mounted from library/busybox\n"
        "latest: digest: sha256:1da70b6c size: 527\n"
    )
    # The name is not escaped in the path, exactly as the docker CLI sends it.
    assert api(daemon) == ["POST /v1.44/images/127.0.0.1:5921/busybox/push?tag=latest"]
    request = daemon.requests[-1]
    assert request.headers["content-length"] == "0"
    assert request.headers["x-registry-auth"] == "e30="


def test_push_quiet_and_name_forms(
    daemon: FakeDaemon, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("POST", "/images/.+/push", stream_reply(PUSH_MESSAGES))
    assert run(daemon, capsys, "push", "-q", f"{REGISTRY}/busybox:v1") == (
        0,
        f"{REGISTRY}/busybox:v1\n",
        "",
    )
    assert run(daemon, capsys, "image", "push", "-q", "busybox")[1] == (
        "docker.io/library/busybox:latest\n"
    )
    assert run(daemon, capsys, "push", "-q", "-a", "alice/app")[1] == "docker.io/alice/app\n"
    assert api(daemon) == [
        "POST /v1.44/images/127.0.0.1:5921/busybox/push?tag=v1",
        "POST /v1.44/images/busybox/push?tag=latest",
        "POST /v1.44/images/alice/app/push",
    ]


def test_push_client_side_errors(
    daemon: FakeDaemon, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = "sha256:" + "0" * 64
    assert run(daemon, capsys, "push", f"busybox@{digest}") == (
        1,
        "",
        "cannot push a digest reference\n",
    )
    assert run(daemon, capsys, "push", "-a", "busybox:1") == (
        1,
        "",
        "tag can't be used with --all-tags/-a\n",
    )
    assert run(daemon, capsys, "push", "Bad:1") == (
        1,
        "",
        "invalid reference format: repository name (library/Bad) must be lowercase\n",
    )
    assert run(daemon, capsys, "push")[0] == 1
    assert api(daemon) == []


def test_push_errors_from_the_daemon(
    daemon: FakeDaemon, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"tag does not exist: {REGISTRY}/nosuch:latest"
    daemon.on(
        "POST",
        f"/images/{REGISTRY}/nosuch/push",
        stream_reply(
            [
                {"status": f"The push refers to repository [{REGISTRY}/nosuch]"},
                {"errorDetail": {"message": missing}, "error": missing},
            ]
        ),
    )
    assert run(daemon, capsys, "push", f"{REGISTRY}/nosuch:latest") == (
        1,
        f"The push refers to repository [{REGISTRY}/nosuch]\n",
        f"{missing}\n",
    )
    daemon.on("POST", f"/images/{REGISTRY}/down/push", error_reply(500, "registry is down"))
    assert run(daemon, capsys, "push", "-q", f"{REGISTRY}/down:1") == (
        1,
        "",
        "Error response from daemon: registry is down\n",
    )


# --------------------------------------------------------------------------- rendering


def test_terminal_rendering_keeps_one_line_per_layer_with_a_bar() -> None:
    out = io.StringIO()
    display_messages(PUSH_MESSAGES, out, is_terminal=True, width=120)
    bar = "[" + ">" + " " * 50 + "] "
    assert out.getvalue() == (
        "The push refers to repository [127.0.0.1:5921/busybox]\n"
        # first layer gets a fresh line, cursor up 1, write, down 1
        "\n\x1b[1A\x1b[2K\r6b198961a051: Preparing \r\x1b[1B"
        # second layer: a new line below it
        "\n\x1b[1A\x1b[2K\r0a1b2c3d4e5f: Preparing \r\x1b[1B"
        "\x1b[1A\x1b[2K\r0a1b2c3d4e5f: Waiting \r\x1b[1B"
        # the first layer's line is two up from the cursor
        f"\x1b[2A\x1b[2K\r6b198961a051: Pushing {bar} 39.42kB/1.982MB\r\x1b[2B"
        "\x1b[2A\x1b[2K\r6b198961a051: Pushed \r\x1b[2B"
        "\x1b[1A\x1b[2K\r0a1b2c3d4e5f: Mounted from library/busybox \r\x1b[1B"
        "latest: digest: sha256:1da70b6c size: 527\n"
    )


def test_terminal_pull_bars_have_sizes_and_narrow_terminals_drop_the_bar() -> None:
    messages = [
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "581cdebca008"},
        {
            "status": "Downloading",
            "progressDetail": {"current": 2033081, "total": 4066162},
            "id": "581cdebca008",
        },
        {
            "status": "Extracting",
            "progressDetail": {"current": 4066162, "total": 4066162},
            "id": "581cdebca008",
        },
        {"status": "Pull complete", "progressDetail": {}, "id": "581cdebca008"},
    ]
    wide = io.StringIO()
    display_messages(messages, wide, is_terminal=True, width=120)
    text = wide.getvalue()
    assert "581cdebca008: Downloading [" + "=" * 25 + ">" + " " * 25 + "]  2.033MB/4.066MB" in text
    assert "581cdebca008: Extracting [" + "=" * 50 + ">]  4.066MB/4.066MB" in text
    narrow = io.StringIO()
    display_messages(messages, narrow, is_terminal=True, width=80)
    assert "581cdebca008: Downloading  2.033MB/4.066MB\r" in narrow.getvalue()
    plain = io.StringIO()
    display_messages(messages, plain, is_terminal=False)
    assert plain.getvalue() == "581cdebca008: Pulling fs layer\n581cdebca008: Pull complete\n"


def test_interactive_login_prompts_on_a_terminal_without_echoing_the_password(
    daemon: FakeDaemon, cfg: Path
) -> None:
    daemon.on("POST", "/auth", accept_login({"alice": "s3cret"}))
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dockyard"), "-H", daemon.host, "login", REGISTRY],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    assert proc.stdout is not None
    stdout_fd = proc.stdout.fileno()

    def read_until(text: bytes) -> bytes:
        seen = b""
        while text not in seen:
            ready, _, _ = select.select([stdout_fd], [], [], 10)
            assert ready, seen
            chunk = os.read(stdout_fd, 4096)
            assert chunk, seen
            seen += chunk
        return seen

    try:
        assert read_until(b"Username: ") == b"Username: "
        os.write(master, b"alice\n")
        read_until(b"Password: ")
        os.write(master, b"s3cret\n")
        out, err = proc.communicate(timeout=20)
        echoed = b""
        while select.select([master], [], [], 0.2)[0]:
            try:
                echoed += os.read(master, 4096)
            except OSError:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert proc.returncode == 0, err
    assert out == b"\nLogin Succeeded\n"
    assert b"alice" in echoed and b"s3cret" not in echoed
    assert json.loads(daemon.requests[-1].body) == {
        "username": "alice",
        "password": "s3cret",
        "serveraddress": REGISTRY,
    }
    assert saved(cfg) == {"auths": {REGISTRY: {"auth": b64("alice:s3cret")}}}
