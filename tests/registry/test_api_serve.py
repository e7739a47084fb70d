"""The real ``dockyard-registry serve`` as a subprocess, driven with ``curl`` (the raw
protocol, by a client we did not write): monolithic and chunked pushes, manifests, pulls back,
ranges, listing, deletion; HTTPS with a certificate; a kill -9 mid-push and a resumed push
after restart; and the command line's own behaviour (``garbage-collect`` dispatch, bad
configs). Only 127.0.0.1 and ephemeral ports; every process is stopped at teardown."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dockyard.registry import main as registry_main

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _command() -> list[str]:
    script = Path(sys.executable).parent / "dockyard-registry"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "dockyard.registry.main"]


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode


def _start(args: list[str], log: Path, scheme: str = "http") -> Proc:
    with open(log, "wb") as fh:
        popen = subprocess.Popen([*_command(), *args], stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    pattern = re.compile(rf"listening on {scheme}://127\.0\.0\.1:(\d+)")
    while time.monotonic() < deadline:
        m = pattern.search(log.read_text(errors="replace"))
        if m:
            return Proc(popen, f"{scheme}://127.0.0.1:{m.group(1)}", log)
        if popen.poll() is not None:
            raise AssertionError(f"registry exited {popen.returncode}: {log.read_text()}")
        time.sleep(0.05)
    popen.kill()
    popen.wait(5)
    raise AssertionError(f"registry did not start: {log.read_text()}")


@dataclass
class CurlResult:
    status: int
    headers: dict[str, str]
    body: bytes


def curl(*args: str, data: bytes | None = None) -> CurlResult:
    """``curl`` with the response head and body separated; header names lower-cased."""
    cmd = ["curl", "-sS", "--noproxy", "*", "-D", "-", "-H", "Expect:", *args]
    if data is not None:
        cmd += ["--data-binary", "@-"]
    out = subprocess.run(cmd, input=data, capture_output=True, timeout=30, check=True).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return CurlResult(status, headers, body)


pytestmark = [pytest.mark.unit, pytest.mark.skipif(shutil.which("curl") is None, reason="curl")]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    base = tmp_path_factory.mktemp("serve")
    config = base / "config.yml"
    config.write_text(
        "log:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: /nonexistent\n"
        "  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:5000\n"
    )
    proc = _start(
        ["serve", "--config", str(config), "--addr", "127.0.0.1:0", "--root", str(base / "root")],
        base / "log",
    )
    yield proc
    assert proc.stop() == 0


def test_version_check_over_curl(served: Proc) -> None:
    r = curl(f"{served.url}/v2/")
    assert r.status == 200 and json.loads(r.body) == {}
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"


def test_push_and_pull_an_image_with_curl(served: Proc) -> None:
    base = f"{served.url}/v2/smoke/app"
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = os.urandom(200_000)
    for blob in (config, layer):
        r = curl(
            "-X",
            "POST",
            "-H",
            "Content-Type: application/octet-stream",
            f"{base}/blobs/uploads/?digest={_sha256(blob)}",
            data=blob,
        )
        assert r.status == 201, r
        assert r.headers["location"] == f"/v2/smoke/app/blobs/{_sha256(blob)}"
        assert r.headers["docker-content-digest"] == _sha256(blob)

    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _sha256(layer),
                    "size": len(layer),
                }
            ],
        },
        indent=3,
    ).encode()
    r = curl(
        "-X", "PUT", "-H", f"Content-Type: {OCI_MANIFEST}", f"{base}/manifests/v1", data=manifest
    )
    assert r.status == 201, r
    assert r.headers["docker-content-digest"] == _sha256(manifest)

    r = curl("-H", f"Accept: {OCI_MANIFEST}", f"{base}/manifests/v1")
    assert r.status == 200 and r.body == manifest
    assert r.headers["content-type"] == OCI_MANIFEST
    r = curl("-I", f"{base}/manifests/{_sha256(manifest)}")
    assert r.status == 200 and r.headers["content-length"] == str(len(manifest))
    r = curl(f"{base}/blobs/{_sha256(layer)}")
    assert r.status == 200 and r.body == layer
    assert r.headers["docker-content-digest"] == _sha256(layer)
    r = curl("-r", "100-199", f"{base}/blobs/{_sha256(layer)}")
    assert r.status == 206 and r.body == layer[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(layer)}"

    r = curl(f"{base}/tags/list")
    assert json.loads(r.body) == {"name": "smoke/app", "tags": ["v1"]}
    r = curl(f"{served.url}/v2/_catalog")
    assert "smoke/app" in json.loads(r.body)["repositories"]


def test_chunked_push_with_curl(served: Proc) -> None:
    base = f"{served.url}/v2/smoke/chunks"
    data = os.urandom(150_000)
    r = curl("-X", "POST", f"{base}/blobs/uploads/")
    assert r.status == 202
    location = served.url + r.headers["location"]
    r = curl(
        "-X",
        "PATCH",
        "-H",
        "Content-Type: application/octet-stream",
        "-H",
        "Content-Range: 0-99999",
        location,
        data=data[:100_000],
    )
    assert r.status == 202 and r.headers["range"] == "0-99999"
    r = curl("-X", "PATCH", "-H", "Content-Range: 0-99", location, data=data[:100])
    assert r.status == 416
    r = curl(location)
    assert r.status == 204 and r.headers["range"] == "0-99999"
    r = curl(
        "-X",
        "PUT",
        "-H",
        f"Content-Range: 100000-{len(data) - 1}",
        f"{served.url}{r.headers['location']}?digest={_sha256(data)}",
        data=data[100_000:],
    )
    assert r.status == 201
    assert curl(f"{base}/blobs/{_sha256(data)}").body == data


def test_bad_input_over_curl(served: Proc) -> None:
    base = f"{served.url}/v2/smoke/bad"
    r = curl("-X", "POST", f"{base}/blobs/uploads/?digest={_sha256(b'claimed')}", data=b"real")
    assert r.status == 400 and json.loads(r.body)["errors"][0]["code"] == "DIGEST_INVALID"
    r = curl(f"{served.url}/v2/Bad/Name/tags/list")
    assert r.status == 400 and json.loads(r.body)["errors"][0]["code"] == "NAME_INVALID"
    r = curl("--path-as-is", f"{served.url}/v2/../../etc/passwd/blobs/{_sha256(b'x')}")
    assert r.status in (400, 404)


def test_delete_over_curl(served: Proc) -> None:
    base = f"{served.url}/v2/smoke/del"
    blob = b"delete me"
    curl("-X", "POST", f"{base}/blobs/uploads/?digest={_sha256(blob)}", data=blob)
    assert curl("-X", "DELETE", f"{base}/blobs/{_sha256(blob)}").status == 202
    assert curl(f"{base}/blobs/{_sha256(blob)}").status == 404


def test_https_with_certificate(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage.inmemory]\n[http]\naddr = "127.0.0.1:0"\n'
        f'[http.tls]\ncertificate = "{cert}"\nkey = "{key}"\n'
    )
    proc = _start(["serve", str(config)], tmp_path / "log", scheme="https")
    try:
        r = curl("--cacert", str(cert), f"{proc.url}/v2/")
        assert r.status == 200
        assert r.headers["docker-distribution-api-version"] == "registry/2.0"
        plain = subprocess.run(
            [
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                proc.url.replace("https", "http") + "/v2/",
            ],
            capture_output=True,
            timeout=30,
        )
        assert plain.stdout != b"200"
    finally:
        assert proc.stop() == 0


def test_kill_9_mid_push_then_resume_after_restart(tmp_path: Path) -> None:
    root = tmp_path / "root"
    data = os.urandom(300_000)
    args = ["serve", "--addr", "127.0.0.1:0", "--root", str(root), "--log-level", "warning"]
    first = _start(args, tmp_path / "log1")
    try:
        r = curl("-X", "POST", f"{first.url}/v2/crash/blobs/uploads/")
        location = r.headers["location"]
        r = curl(
            "-X", "PATCH", "-H", "Content-Range: 0-99999", first.url + location, data=data[:100_000]
        )
        assert r.status == 202
    finally:
        first.stop(signal.SIGKILL)
    second = _start(args, tmp_path / "log2")
    try:
        r = curl(second.url + location)
        assert r.status == 204 and r.headers["range"] == "0-99999"
        assert curl(f"{second.url}/v2/crash/blobs/{_sha256(data)}").status == 404
        r = curl(
            "-X",
            "PATCH",
            "-H",
            f"Content-Range: 100000-{len(data) - 1}",
            second.url + location,
            data=data[100_000:],
        )
        assert r.status == 202
        r = curl("-X", "PUT", f"{second.url}{location}?digest={_sha256(data)}")
        assert r.status == 201
        assert curl(f"{second.url}/v2/crash/blobs/{_sha256(data)}").body == data
    finally:
        assert second.stop() == 0


def test_garbage_collect_dispatches_to_gc_module(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[Any, bool]] = []
    fake = types.ModuleType("dockyard.registry.gc")

    def main_gc(config: Any, dry_run: bool) -> int:
        calls.append((config, dry_run))
        return 3

    fake.main_gc = main_gc  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dockyard.registry.gc", fake)
    monkeypatch.setattr(registry_main.importlib.util, "find_spec", lambda name: object())
    assert registry_main.main(["garbage-collect", "--dry-run", "--root", str(tmp_path)]) == 3
    ((config, dry_run),) = calls
    assert dry_run is True and config.root == tmp_path and config.storage == "filesystem"


def test_garbage_collect_without_gc_module(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(registry_main.importlib.util, "find_spec", lambda name: None)
    assert registry_main.main(["garbage-collect"]) == 1
    assert "not available" in capsys.readouterr().err


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("storage:\n  s3: {}\n")
    assert registry_main.main(["serve", "--config", str(bad)]) == 2
    assert "storage.s3" in capsys.readouterr().err
    assert registry_main.main(["serve", "--addr", "nonsense"]) == 2


def test_address_in_use_exits_1(served: Proc, tmp_path: Path) -> None:
    port = served.url.rsplit(":", 1)[1]
    r = subprocess.run(
        [*_command(), "serve", "--addr", f"127.0.0.1:{port}", "--root", str(tmp_path)],
        capture_output=True,
        timeout=30,
    )
    assert r.returncode == 1 and b"cannot serve" in r.stderr


def test_bad_auth_section_exits_2_without_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "config.yml"
    config.write_text("storage:\n  inmemory: {}\nauth:\n  htpasswd: {realm: x}\n")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dockyard.registry.main",
            "serve",
            "--config",
            str(config),
            "--addr",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert "auth.htpasswd.path is required" in r.stderr
    assert "Traceback" not in r.stderr
