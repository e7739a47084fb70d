"""Real registries and real clients for the interop tests: dockyard-registry, the CNCF registry
(Debian's ``docker-registry``), skopeo, podman and curl.

Every server listens on an ephemeral 127.0.0.1 port, lives in its own temp directory and is
stopped by PID; every client gets its own auth file and HOME, so nothing on the machine leaks in
or out. The two registries use the same on-disk layout (``<root>/docker/registry/v2/...``), so
tests can look at storage the same way for both.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from cryptography.hazmat.primitives import serialization

from dockyard.registry.auth import jwt

VENV_BIN = Path(sys.executable).parent
DOCKYARD_REGISTRY = VENV_BIN / "dockyard-registry"
CNCF_REGISTRY = Path("/usr/bin/docker-registry")
KINDS = ("dockyard", "cncf")

USERS = {"alice": "alice-secret", "bob": "bob-secret"}
SERVICE = "interop-registry"
ISSUER = "dockyard-token-issuer"
# alice may do anything; bob may pull and push under bob/; anonymous callers may pull public/.
ACL = [
    {"account": "alice", "type": "*", "name": "*", "actions": ["*"]},
    {"account": "bob", "name": "bob/*", "actions": ["pull", "push"]},
    {"account": "", "name": "public/*", "actions": ["pull"]},
]


def need_tool(path: str | Path) -> str:
    """The tool's path; skip (fail under CI) when it is not installed."""
    found = shutil.which(str(path))
    if found is None:
        message = f"{path} is not installed (apt: skopeo podman docker-registry apache2-utils)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_htpasswd(path: Path, users: Mapping[str, str] = USERS) -> Path:
    lines = []
    for user, password in users.items():
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
        lines.append(f"{user}:{hashed.replace('$2b$', '$2y$', 1)}")  # as htpasswd -B writes
    path.write_text("\n".join(lines) + "\n")
    return path


def write_token_key(directory: Path, kind: str = "EC") -> tuple[Path, Path]:
    """A signing key and a self-signed certificate for it (the CNCF registry's rootcertbundle)."""
    key = jwt.generate_signing_key(kind)
    key_path, cert_path = directory / "token.key", directory / "token.crt"
    key_path.write_bytes(
        key.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert = jwt.self_signed_certificate(key, ISSUER)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@dataclass
class HTTPResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    data: bytes | None = None,
    timeout: float = 10,
) -> HTTPResult:
    """A plain stdlib request (used to wait for servers; the tests speak through curl)."""
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return HTTPResult(
                resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
            )
    except urllib.error.HTTPError as err:
        return HTTPResult(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


@dataclass
class Registry:
    """One running registry process."""

    kind: str
    workdir: Path
    port: int
    config: Path
    argv: list[str]
    root: Path
    auth: str | None = None
    token_server: Registry | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"{self.kind}-{self.port}.log"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def start(self, timeout: float = 15) -> None:
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} registry exited:\n{self.logs()}")
            try:
                http("GET", self.url("/v2/"), timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} registry did not answer in {timeout}s:\n{self.logs()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def gc_argv(self, dry_run: bool) -> list[str]:
        if self.kind == "cncf":
            return [
                str(CNCF_REGISTRY),
                "garbage-collect",
                *(["--dry-run"] if dry_run else []),
                str(self.config),
            ]
        return [
            str(DOCKYARD_REGISTRY),
            "garbage-collect",
            "--config",
            str(self.config),
            *(["--dry-run"] if dry_run else []),
        ]

    def blobs(self) -> set[str]:
        """Digests of the blobs in storage (same layout for both registries)."""
        base = self.root / "docker/registry/v2/blobs"
        return {
            f"{alg.name}:{d.name}"
            for alg in (base.iterdir() if base.is_dir() else [])
            for prefix in alg.iterdir()
            for d in prefix.iterdir()
            if (d / "data").is_file()
        }


def _dockyard_config(root: Path, port: int, auth: dict[str, Any] | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 0.1,
        "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
        "log": {"level": "info"},
    }
    if auth is not None:
        config["auth"] = auth
    return config


def _cncf_config(root: Path, port: int, auth: dict[str, Any] | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "interop-tests"},
    }
    if auth is not None:
        config["auth"] = auth
    return config


def make_registry(kind: str, workdir: Path, auth: str | None = None) -> Registry:
    """Configure (not start) a registry of ``kind`` with ``auth`` None, "htpasswd" or "token".

    Token auth on the CNCF registry uses a dockyard-registry as its token server: the CNCF
    registry then checks JWTs that our token server signed.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    root = workdir / f"{kind}-store"
    root.mkdir()
    htpasswd = write_htpasswd(workdir / "htpasswd")
    token_server: Registry | None = None
    auth_config: dict[str, Any] | None = None
    if auth == "htpasswd":
        auth_config = {"htpasswd": {"realm": "interop", "path": str(htpasswd)}}
    elif auth == "token":
        key, cert = write_token_key(workdir)
        issuer_config = {
            "service": SERVICE,
            "issuer": ISSUER,
            "key": str(key),
            "users": str(htpasswd),
            "acl": ACL,
        }
        if kind == "cncf":
            token_server = make_registry("dockyard", workdir / "token-server", None)
            realm = token_server.url("/token")
            issuer_config["realm"] = realm
            token_server.config.write_text(
                json.dumps(
                    _dockyard_config(
                        token_server.root, token_server.port, {"token": issuer_config}
                    ),
                    indent=1,
                )
            )
            auth_config = {
                "token": {
                    "realm": realm,
                    "service": SERVICE,
                    "issuer": ISSUER,
                    "rootcertbundle": str(cert),
                }
            }
        else:
            auth_config = {"token": {**issuer_config, "realm": f"http://127.0.0.1:{port}/token"}}
    elif auth is not None:
        raise ValueError(auth)
    config = workdir / f"{kind}-config.yml"
    if kind == "cncf":
        need_tool(CNCF_REGISTRY)
        config.write_text(json.dumps(_cncf_config(root, port, auth_config), indent=1))
        argv = [str(CNCF_REGISTRY), "serve", str(config)]
    else:
        config.write_text(json.dumps(_dockyard_config(root, port, auth_config), indent=1))
        argv = [str(DOCKYARD_REGISTRY), "serve", "--config", str(config)]
    return Registry(kind, workdir, port, config, argv, root, auth, token_server)


@contextlib.contextmanager
def running_registry(kind: str, workdir: Path, auth: str | None = None) -> Iterator[Registry]:
    registry = make_registry(kind, workdir, auth)
    try:
        if registry.token_server is not None:
            registry.token_server.start()
        registry.start()
        yield registry
    finally:
        registry.stop()
        if registry.token_server is not None:
            registry.token_server.stop()


# -- clients -------------------------------------------------------------------------------------


class Clients:
    """skopeo, podman and curl with private state in a temp dir that ``close()`` removes."""

    def __init__(self) -> None:
        # Short: podman wants its runroot path under 50 characters.
        self.home = Path(tempfile.mkdtemp(prefix="dy-cl-"))
        self.auth_file = self.home / "auth.json"
        self.auth_file.write_text("{}")

    def __repr__(self) -> str:
        return f"Clients(home={self.home})"

    def close(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_RUNTIME_DIR": str(self.home / "run"),
            "REGISTRY_AUTH_FILE": str(self.auth_file),
            "TMPDIR": str(self.home),
        }

    def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        (self.home / "run").mkdir(exist_ok=True, mode=0o700)
        proc = subprocess.run(
            list(argv),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    # skopeo ---------------------------------------------------------------------------------

    def skopeo(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run([need_tool("skopeo"), *args], check=check)

    def skopeo_copy(
        self,
        src: str,
        dst: str,
        *,
        creds: str | None = None,
        check: bool = True,
        extra: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        args = ["copy", "--src-tls-verify=false", "--dest-tls-verify=false", *extra]
        if creds is not None:
            if src.startswith("docker://"):
                args += ["--src-creds", creds]
            if dst.startswith("docker://"):
                args += ["--dest-creds", creds]
        return self.skopeo(*args, src, dst, check=check)

    def raw_manifest(self, ref: str, *, creds: str | None = None) -> bytes:
        args = [
            "inspect",
            "--raw",
            "--tls-verify=false",
            *(["--creds", creds] if creds else []),
            ref,
        ]
        proc = subprocess.run(
            [need_tool("skopeo"), *args], env=self.env, capture_output=True, timeout=60, check=False
        )
        if proc.returncode != 0:
            raise AssertionError(f"skopeo inspect {ref}: {proc.stderr.decode(errors='replace')}")
        return proc.stdout

    # podman ---------------------------------------------------------------------------------

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        base = self.home / "podman"
        return self.run(
            [
                need_tool("podman"),
                "--root", str(base / "root"),
                "--runroot", str(base / "run"),
                "--tmpdir", str(base / "tmp"),
                "--storage-driver", "vfs",
                "--runtime", "runc",
                "--cgroup-manager", "cgroupfs",
                "--events-backend", "file",
                *args,
            ],
            check=check,
        )  # fmt: skip

    # curl -----------------------------------------------------------------------------------

    def curl(
        self,
        method: str,
        url: str,
        *,
        user: str | None = None,
        bearer: str | None = None,
        headers: Sequence[str] = (),
        data: bytes | None = None,
    ) -> HTTPResult:
        """One request with curl; status, headers (lower-case names, last wins) and body."""
        out = self.home / "curl-body"
        head = self.home / "curl-head"
        argv = [
            need_tool("curl"),
            "-sS",
            "-X",
            method,
            "-o",
            str(out),
            "-D",
            str(head),
            "--max-time",
            "20",
        ]
        if method == "HEAD":
            argv = [
                need_tool("curl"),
                "-sS",
                "-I",
                "-o",
                str(out),
                "-D",
                str(head),
                "--max-time",
                "20",
            ]
        if user is not None:
            argv += ["-u", user]
        if bearer is not None:
            argv += ["-H", f"Authorization: Bearer {bearer}"]
        for h in headers:
            argv += ["-H", h]
        if data is not None:
            data_file = self.home / "curl-data"
            data_file.write_bytes(data)
            argv += ["--data-binary", f"@{data_file}"]
        self.run([*argv, url])
        lines = head.read_bytes().decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        parsed: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                parsed[name.strip().lower()] = value.strip()
        return HTTPResult(status, parsed, out.read_bytes() if out.exists() else b"")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def basic(user: str) -> str:
    return f"{user}:{USERS[user]}"


def basic_header(user: str) -> str:
    return "Basic " + base64.b64encode(basic(user).encode()).decode()


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="x",service="y"`` → ("bearer", {"realm": "x", "service": "y"})."""
    scheme, _, rest = value.partition(" ")
    params: dict[str, str] = {}
    i = 0
    while i < len(rest):
        eq = rest.index("=", i)
        key = rest[i:eq].strip().strip(",").strip()
        if rest[eq + 1] == '"':
            j = eq + 2
            buf = []
            while rest[j] != '"':
                if rest[j] == "\\":
                    j += 1
                buf.append(rest[j])
                j += 1
            params[key.lower()] = "".join(buf)
            i = j + 1
        else:
            end = rest.find(",", eq)
            end = len(rest) if end < 0 else end
            params[key.lower()] = rest[eq + 1 : end]
            i = end
        while i < len(rest) and rest[i] in ", ":
            i += 1
    return scheme.lower(), params


def oci_layout_manifest(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    return str(index["manifests"][0]["digest"])


def assert_layout_intact(layout: Path) -> None:
    """Every blob of an OCI layout hashes to its name."""
    for blob in (layout / "blobs" / "sha256").iterdir():
        assert sha256(blob.read_bytes()) == f"sha256:{blob.name}", blob
