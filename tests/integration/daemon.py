"""A real ``dockyardd`` for tests: its own data root, exec root, socket and cgroup parent.

``TestDaemon`` starts it, talks to it through our CLI, the real docker CLI and raw HTTP,
and on ``close()`` removes every container, stops it by PID and unmounts what is left.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent
DOCKYARDD = str(VENV_BIN / "dockyardd")
DOCKYARD = str(VENV_BIN / "dockyard")
DOCKER = os.environ.get("DOCKYARD_TEST_DOCKER_CLI", "/usr/local/bin/docker")


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class TestDaemon:
    __test__ = False

    def __init__(self, base: Path, config: dict[str, Any] | None = None) -> None:
        token = secrets.token_hex(4)
        self.config = config
        self.base = base
        self.data_root = base / "root"
        self.exec_root = Path(f"/run/dyt-{token}")
        self.sock = self.exec_root / "d.sock"
        self.cgroup_parent = f"/dockyard-test-{token}"
        self.docker_config = base / "docker-config"
        self.docker_config.mkdir(parents=True, exist_ok=True)
        self.log_file = base / "dockyardd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        # Every test daemon has its own bridge and subnet (never dockyard0, never 172.17/16).
        self.bridge = f"dyt{token}"
        self.bip = _free_test_bip()

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DOCKER_HOST": self.host,
                "DOCKYARD_HOST": self.host,
                "DOCKER_CONFIG": str(self.docker_config),
                "DOCKER_BUILDKIT": "0",
                "DOCKER_CLI_HINTS": "false",
            }
        )
        return env

    # ---- lifecycle --------------------------------------------------------------------

    def start(self, timeout: float = 20) -> None:
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen(
            [
                DOCKYARDD,
                "--data-root",
                str(self.data_root),
                "--exec-root",
                str(self.exec_root),
                "-H",
                self.host,
                "--cgroup-parent",
                self.cgroup_parent,
                "--pidfile",
                str(self.exec_root / "dockyardd.pid"),
                "--config-file",
                str(self._config_file()),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockyardd exited: {self.log_file.read_text()[-3000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.request("GET", "/_ping")[0] == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"dockyardd did not answer: {self.log_file.read_text()[-3000:]}")

    def _config_file(self) -> Path:
        path = self.base / "daemon.json"
        if self.config is not None or not path.exists():
            config = {"bridge": self.bridge, "bip": self.bip, **(self.config or {})}
            self.bridge, self.bip = config["bridge"], config["bip"]
            path.write_text(json.dumps(config))
        return path

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        """Remove every container, stop the daemon, and leave nothing behind."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                status, containers = self.request("GET", "/containers/json?all=1")
                for c in containers if status == 200 else []:
                    self.request("DELETE", f"/containers/{c['Id']}?force=1&v=1")
        self.stop()
        _kill_leftover_monitors(self.exec_root)
        _unmount_under(self.data_root)
        _unmount_under(self.exec_root)
        _remove_cgroups(self.cgroup_parent)
        _remove_network_leftovers(self.bridge)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        shutil.rmtree(self.data_root, ignore_errors=True)

    # ---- clients ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> tuple[int, Any]:
        conn = _UnixHTTPConnection(str(self.sock), timeout)
        try:
            data = (
                raw
                if raw is not None
                else (json.dumps(body).encode() if body is not None else None)
            )
            hdrs = {"Content-Type": "application/json"} if body is not None else {}
            hdrs.update(headers or {})
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            ctype = resp.getheader("Content-Type", "")
            if ctype == "application/json" and payload:
                try:
                    return resp.status, json.loads(payload)
                except json.JSONDecodeError:
                    return resp.status, [json.loads(x) for x in payload.splitlines() if x.strip()]
            return resp.status, payload
        finally:
            conn.close()

    def cli(
        self, *args: str, input: bytes | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self._run([DOCKYARD, *args], input, timeout)

    def docker(
        self, *args: str, input: bytes | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self._run([DOCKER, *args], input, timeout)

    def _run(
        self, argv: list[str], input: bytes | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """Run a client; output decoded without newline translation (TTY output keeps its CR)."""
        r = subprocess.run(argv, env=self.env, capture_output=True, timeout=timeout, input=input)
        return subprocess.CompletedProcess(
            r.args,
            r.returncode,
            r.stdout.decode(errors="replace"),
            r.stderr.decode(errors="replace"),
        )

    def load(self, tarball: Path) -> None:
        status, out = self.request(
            "POST",
            "/images/load?quiet=1",
            raw=tarball.read_bytes(),
            headers={"Content-Type": "application/x-tar"},
        )
        assert status == 200, out
        assert not any("error" in m for m in out if isinstance(m, dict)), out


def _mounts() -> list[str]:
    with open("/proc/self/mounts") as f:
        return [line.split()[1].replace("\\040", " ") for line in f]


def _unmount_under(root: Path) -> None:
    prefix = str(root)
    for target in sorted(
        (m for m in _mounts() if m == prefix or m.startswith(prefix + "/")), reverse=True
    ):
        subprocess.run(["umount", "-l", target], capture_output=True, timeout=30)


def _kill_leftover_monitors(exec_root: Path) -> None:
    """conmon monitors of this daemon only: found by our exec root in their command line."""
    needle = str(exec_root).encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"conmon" in cmdline.split(b"\0")[0] and needle in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    runc_root = exec_root / "runc"
    if runc_root.exists():
        for cid in os.listdir(runc_root):
            subprocess.run(
                ["runc", "--root", str(runc_root), "delete", "--force", cid],
                capture_output=True,
                timeout=30,
            )


def _remove_cgroups(parent: str) -> None:
    base = Path("/sys/fs/cgroup")
    for hierarchy in base.iterdir() if base.exists() else []:
        path = hierarchy / parent.lstrip("/")
        if path.is_dir():
            for child in sorted(path.rglob("*"), reverse=True):
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                path.rmdir()


def _free_test_bip() -> str:
    """A 10.213.N.1/24 no interface of this host uses yet."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, timeout=10)
    for _ in range(64):
        n = secrets.randbelow(250) + 2
        if f" 10.213.{n}." not in out.stdout:
            return f"10.213.{n}.1/24"
    raise RuntimeError("no free test subnet in 10.213.0.0/16")


def _remove_network_leftovers(bridge: str) -> None:
    """Safety net after a failed test: this daemon's bridges and iptables chains only."""
    prefix = bridge[:7]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=10)
    for line in links.stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name == bridge or name.startswith(prefix + "-"):
            subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=10)
    tag = bridge if len(bridge) <= 12 else None
    if tag is None:
        return
    chain = f"DOCKYARD-{tag}"
    for table, chains in (("nat", [chain, chain + "-POST"]), ("filter", [chain + "-FWD"])):
        rules = subprocess.run(
            ["iptables", "-w", "5", "-t", table, "-S"], capture_output=True, text=True, timeout=20
        )
        for line in rules.stdout.splitlines():
            words = line.split()
            jumps = words[:1] == ["-A"] and "-j" in words
            if jumps and words[words.index("-j") + 1] in chains and words[1] not in chains:
                subprocess.run(
                    ["iptables", "-w", "5", "-t", table, "-D", *words[1:]],
                    capture_output=True,
                    timeout=20,
                )
        for c in chains:
            subprocess.run(
                ["iptables", "-w", "5", "-t", table, "-F", c], capture_output=True, timeout=20
            )
            subprocess.run(
                ["iptables", "-w", "5", "-t", table, "-X", c], capture_output=True, timeout=20
            )
