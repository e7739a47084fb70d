"""``dockyard.client.dockerconfig``: the docker CLI's ``config.json`` and credential helpers.

The helper tests run a tiny fake ``docker-credential-fake`` program that the test writes
into a temp directory put first on PATH; it keeps its secrets in a JSON file and logs every
call, so the tests see exactly what crossed the helper protocol.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from dockyard.client import dockerconfig
from dockyard.client.dockerconfig import (
    INDEX_SERVER,
    AuthConfig,
    ConfigFile,
    CredentialHelperError,
    CredentialsNotFound,
    FileStore,
    NativeStore,
    config_dir,
    convert_to_hostname,
    registry_key,
)

pytestmark = pytest.mark.unit

FAKE_HELPER = f"""#!{sys.executable}
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
store = os.path.join(here, "fake-secrets.json")
action = sys.argv[1] if len(sys.argv) > 1 else ""
data = sys.stdin.read()
with open(os.path.join(here, "fake-calls.log"), "a") as log:
    log.write(json.dumps([action, data]) + "\\n")
try:
    with open(store) as fh:
        secrets = json.load(fh)
except (OSError, ValueError):
    secrets = {{}}
if action == "store":
    creds = json.loads(data)
    secrets[creds["ServerURL"]] = {{"Username": creds["Username"], "Secret": creds["Secret"]}}
elif action in ("get", "erase"):
    if data not in secrets:
        print("credentials not found in native keychain")
        sys.exit(1)
    if action == "get":
        print(json.dumps({{"ServerURL": data, **secrets[data]}}))
    else:
        del secrets[data]
else:
    print("unknown action " + action)
    sys.exit(1)
with open(store, "w") as fh:
    json.dump(secrets, fh)
"""

BROKEN_HELPER = """#!/bin/sh
echo "the keyring is locked"
exit 3
"""


class Helper:
    """The fake helper's directory: its secrets and the calls it received."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    @property
    def secrets(self) -> dict[str, dict[str, str]]:
        path = self.dir / "fake-secrets.json"
        return json.loads(path.read_text()) if path.exists() else {}

    @property
    def calls(self) -> list[list[str]]:
        path = self.dir / "fake-calls.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


def install_helpers(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Helper:
    """``docker-credential-fake`` and ``docker-credential-broken`` first on PATH."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (("fake", FAKE_HELPER), ("broken", BROKEN_HELPER)):
        path = directory / f"docker-credential-{name}"
        path.write_text(text)
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ.get('PATH', '')}")
    return Helper(directory)


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Helper:
    return install_helpers(tmp_path / "bin", monkeypatch)


def write_config(directory: Path, data: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(data))
    return path


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --------------------------------------------------------------------------- names


def test_config_dir_precedence(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "home")}
    assert config_dir(env=env) == tmp_path / "home" / ".docker"
    env["DOCKER_CONFIG"] = "/d"
    assert config_dir(env=env) == Path("/d")
    env["DOCKYARD_CONFIG"] = "/y"
    assert config_dir(env=env) == Path("/y")
    assert config_dir("/flag", env=env) == Path("/flag")


@pytest.mark.parametrize(
    ("address", "host"),
    [
        ("127.0.0.1:5000", "127.0.0.1:5000"),
        ("http://127.0.0.1:5000", "127.0.0.1:5000"),
        ("https://registry.example.com/v2/", "registry.example.com"),
        ("https://index.docker.io/v1/", "index.docker.io"),
        ("registry.example.com/some/path", "registry.example.com"),
        ("http://user@host:5000/x", "host:5000"),
        ("[::1]:5000", "[::1]:5000"),
    ],
)
def test_convert_to_hostname(address: str, host: str) -> None:
    assert convert_to_hostname(address) == host


def test_registry_key_uses_the_index_server_for_docker_hub() -> None:
    assert registry_key("docker.io") == INDEX_SERVER
    assert registry_key("index.docker.io") == INDEX_SERVER
    assert registry_key("127.0.0.1:5000") == "127.0.0.1:5000"
    assert registry_key("ghcr.io") == "ghcr.io"


# --------------------------------------------------------------------------- header encoding


def test_empty_auth_encodes_like_docker() -> None:
    assert AuthConfig().encode() == "e30="
    assert dockerconfig.EMPTY_AUTH == "e30="


def test_auth_header_is_base64url_json_in_go_field_order() -> None:
    auth = AuthConfig(username="testuser", password="testpass", server_address="127.0.0.1:5921")
    body = '{"username":"testuser","password":"testpass","serveraddress":"127.0.0.1:5921"}'
    assert auth.to_json() == json.loads(body)
    assert auth.encode() == base64.urlsafe_b64encode(body.encode()).decode()
    assert auth.encode().startswith("eyJ1c2VybmFtZSI6")  # as recorded in docker-cli-wire.md


def test_auth_header_uses_the_url_alphabet_keeps_padding_and_escapes_html() -> None:
    auth = AuthConfig(username="u", password="<>&??>>~~", server_address="h:1")
    header = auth.encode()
    assert "+" not in header and "/" not in header
    assert len(header) % 4 == 0
    decoded = base64.urlsafe_b64decode(header).decode()
    assert '"password":"\\u003c\\u003e\\u0026??\\u003e\\u003e~~"' in decoded


def test_identity_token_header_has_no_password() -> None:
    auth = AuthConfig(username="alice", server_address="h:1", identity_token="tok")
    decoded = json.loads(base64.urlsafe_b64decode(auth.encode()))
    assert decoded == {"username": "alice", "serveraddress": "h:1", "identitytoken": "tok"}


# --------------------------------------------------------------------------- the file


def test_missing_file_is_an_empty_config(tmp_path: Path) -> None:
    config = dockerconfig.load(tmp_path / "nothing", detect_store=False)
    assert config.warning is None
    assert config.auths == {}
    assert config.get_auth("127.0.0.1:5000") == AuthConfig()


def test_load_decodes_auths_and_keeps_the_key_as_server_address(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "auths": {
                "127.0.0.1:5000": {"auth": b64("alice:s3:cret")},
                INDEX_SERVER: {"auth": b64("bob:pw"), "identitytoken": "tok"},
                "legacy.example.com": {"username": "carol", "password": "pw2"},
            }
        },
    )
    config = dockerconfig.load(tmp_path, detect_store=False)
    assert config.warning is None
    assert config.get_auth("127.0.0.1:5000") == AuthConfig(
        username="alice", password="s3:cret", server_address="127.0.0.1:5000"
    )
    hub = config.get_auth(INDEX_SERVER)
    assert (hub.username, hub.password, hub.identity_token) == ("bob", "pw", "tok")
    assert config.get_auth("legacy.example.com").password == "pw2"


def test_legacy_url_keys_match_by_hostname(tmp_path: Path) -> None:
    write_config(tmp_path, {"auths": {"https://registry.example.com/v1/": {"auth": b64("a:b")}}})
    config = dockerconfig.load(tmp_path, detect_store=False)
    auth = config.get_auth("registry.example.com")
    assert (auth.username, auth.password) == ("a", "b")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{bad", "Error parsing config file"),
        ("[1, 2]", "must hold a JSON object"),
        (json.dumps({"auths": {"h:1": {"auth": "!!!"}}}), "illegal base64 data"),
        (json.dumps({"auths": {"h:1": {"auth": b64("nocolon")}}}), "Invalid auth configuration"),
    ],
)
def test_a_broken_file_gives_a_warning_and_an_empty_config(
    tmp_path: Path, content: str, reason: str
) -> None:
    (tmp_path / "config.json").write_text(content)
    config = dockerconfig.load(tmp_path, detect_store=False)
    assert config.warning is not None
    assert config.warning.startswith(f"Error parsing config file ({tmp_path / 'config.json'}): ")
    assert reason in config.warning
    assert config.auths == {}


def test_save_is_docker_formatted_0600_and_keeps_unknown_keys(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        {"psFormat": "table {{.ID}}", "auths": {"old:1": {"auth": b64("o:p")}}, "x-extra": [1]},
    )
    path.chmod(0o644)
    config = dockerconfig.load(tmp_path, detect_store=False)
    store = config.store_for("h:5000")
    assert isinstance(store, FileStore)
    assert store.store(AuthConfig(username="u", password="p", server_address="h:5000"))
    text = path.read_text()
    assert text == (
        "{\n"
        '\t"psFormat": "table {{.ID}}",\n'
        '\t"auths": {\n'
        '\t\t"old:1": {\n'
        f'\t\t\t"auth": "{b64("o:p")}"\n'
        "\t\t},\n"
        '\t\t"h:5000": {\n'
        f'\t\t\t"auth": "{b64("u:p")}"\n'
        "\t\t}\n"
        "\t},\n"
        '\t"x-extra": [\n'
        "\t\t1\n"
        "\t]\n"
        "}"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]  # no temp file left


def test_save_creates_the_directory_and_writes_auths(tmp_path: Path) -> None:
    directory = tmp_path / "new" / "dir"
    config = dockerconfig.load(directory, detect_store=False)
    config.store_for("h:1").store(
        AuthConfig(username="u", password="p", server_address="h:1", identity_token="tok")
    )
    assert json.loads((directory / "config.json").read_text()) == {
        "auths": {"h:1": {"auth": b64("u:p"), "identitytoken": "tok"}}
    }
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_storing_unchanged_credentials_does_not_rewrite(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"auths": {"h:1": {"auth": b64("u:p")}}})
    before = path.stat().st_mtime_ns, path.stat().st_ino
    config = dockerconfig.load(tmp_path, detect_store=False)
    assert not config.store_for("h:1").store(
        AuthConfig(username="u", password="p", server_address="h:1")
    )
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before


def test_save_follows_a_symlinked_config(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "config.json").write_text("{}")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "config.json").symlink_to(real / "config.json")
    config = dockerconfig.load(linked, detect_store=False)
    config.store_for("h:1").store(AuthConfig(username="u", password="p", server_address="h:1"))
    assert (linked / "config.json").is_symlink()
    assert "h:1" in json.loads((real / "config.json").read_text())["auths"]


def test_file_store_erase(tmp_path: Path) -> None:
    write_config(tmp_path, {"auths": {"h:1": {"auth": b64("u:p")}, "k:2": {}}})
    config = dockerconfig.load(tmp_path, detect_store=False)
    config.store_for("h:1").erase("h:1")
    config.store_for("nothing").erase("nothing")  # absent: not an error
    assert json.loads((tmp_path / "config.json").read_text()) == {"auths": {"k:2": {}}}


# --------------------------------------------------------------------------- helpers


def test_helper_store_get_erase_round_trip(tmp_path: Path, helper: Helper) -> None:
    write_config(tmp_path / "cfg", {"credsStore": "fake"})
    config = dockerconfig.load(tmp_path / "cfg")
    store = config.store_for("h:5000")
    assert isinstance(store, NativeStore)
    store.store(AuthConfig(username="alice", password="secret", server_address="h:5000"))
    assert helper.calls == [
        ["store", '{"ServerURL":"h:5000","Username":"alice","Secret":"secret"}\n']
    ]
    assert helper.secrets == {"h:5000": {"Username": "alice", "Secret": "secret"}}
    # config.json keeps an empty entry, never the secret.
    saved = json.loads((tmp_path / "cfg" / "config.json").read_text())
    assert saved == {"credsStore": "fake", "auths": {"h:5000": {}}}

    again = dockerconfig.load(tmp_path / "cfg")
    assert again.get_auth("h:5000") == AuthConfig(
        username="alice", password="secret", server_address="h:5000"
    )
    assert helper.calls[-1] == ["get", "h:5000"]

    again.store_for("h:5000").erase("h:5000")
    assert helper.calls[-1] == ["erase", "h:5000"]
    assert helper.secrets == {}
    assert json.loads((tmp_path / "cfg" / "config.json").read_text())["auths"] == {}


def test_helper_identity_tokens_use_the_token_username(tmp_path: Path, helper: Helper) -> None:
    config = ConfigFile(tmp_path / "config.json", {"credsStore": "fake"})
    config.store_for("h:1").store(
        AuthConfig(username="alice", server_address="h:1", identity_token="refresh")
    )
    assert helper.secrets == {"h:1": {"Username": "<token>", "Secret": "refresh"}}
    auth = config.get_auth("h:1")
    assert (auth.username, auth.password, auth.identity_token) == ("", "", "refresh")
    assert json.loads(base64.urlsafe_b64decode(auth.encode())) == {
        "serveraddress": "h:1",
        "identitytoken": "refresh",
    }


def test_helper_without_credentials_gives_empty_auth(tmp_path: Path, helper: Helper) -> None:
    config = ConfigFile(tmp_path / "config.json", {"credsStore": "fake"})
    assert config.get_auth("h:1") == AuthConfig()
    assert config.get_auth("h:1").encode() == "e30="
    with pytest.raises(CredentialsNotFound):
        config.store_for("h:1").erase("h:1")


def test_cred_helpers_win_over_creds_store(tmp_path: Path, helper: Helper) -> None:
    config = ConfigFile(
        tmp_path / "config.json",
        {"credsStore": "broken", "credHelpers": {"h:1": "fake"}},
    )
    assert isinstance(config.store_for("h:1"), NativeStore)
    assert config.store_for("h:1").helper == "fake"  # type: ignore[attr-defined]
    assert config.store_for("other:2").helper == "broken"  # type: ignore[attr-defined]
    config.store_for("h:1").store(AuthConfig(username="u", password="p", server_address="h:1"))
    assert helper.secrets == {"h:1": {"Username": "u", "Secret": "p"}}


def test_helper_failures_are_worded_like_docker(tmp_path: Path, helper: Helper) -> None:
    config = ConfigFile(tmp_path / "config.json", {"credsStore": "broken"})
    with pytest.raises(CredentialHelperError) as got:
        config.get_auth("h:1")
    assert str(got.value) == (
        "error getting credentials - err: exit status 3, out: `the keyring is locked`"
    )
    with pytest.raises(CredentialHelperError) as stored:
        config.store_for("h:1").store(AuthConfig(username="u", password="p", server_address="h:1"))
    assert str(stored.value).startswith("error storing credentials - err: exit status 3")
    assert not (tmp_path / "config.json").exists()  # nothing half-saved

    missing = ConfigFile(tmp_path / "config.json", {"credsStore": "nosuch"})
    with pytest.raises(CredentialHelperError) as absent:
        missing.store_for("h:1").store(AuthConfig(username="u", password="p", server_address="h"))
    assert str(absent.value) == (
        'error storing credentials - err: exec: "docker-credential-nosuch": executable file '
        "not found in $PATH, out: ``"
    )


def test_default_store_is_detected_only_for_a_config_without_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    assert dockerconfig.load(tmp_path / "a").creds_store == ""
    program = bin_dir / "docker-credential-secretservice"
    program.write_text("#!/bin/sh\nexit 1\n")
    program.chmod(0o755)
    assert dockerconfig.load(tmp_path / "a").creds_store == "secretservice"
    write_config(tmp_path / "b", {"auths": {"h:1": {"auth": b64("u:p")}}})
    assert dockerconfig.load(tmp_path / "b").creds_store == ""
    write_config(tmp_path / "c", {"credsStore": "fake"})
    assert dockerconfig.load(tmp_path / "c").creds_store == "fake"
