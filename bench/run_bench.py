#!/opt/dockyard-venv/bin/python
"""Dockyard vs Docker (Debian's docker.io) side by side, in one run.

Starts a private dockyardd and a private dockerd (own data/exec roots, sockets, bridge,
``--iptables=false``), loads the same busybox image into both, then measures alternately:

1. ``run --rm busybox true`` wall time (our CLI against dockyardd, docker CLI against dockerd)
2. 20 sequential ``run -d busybox sleep 600``
3. RSS of the idle daemon, and host memory per running container (monitor RSS:
   conmon for us, containerd-shim for docker)

Prints medians and ratios and appends them to bench/RESULTS.md. Stops both daemons by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
DOCKER_CLI = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "/usr/local/bin/docker"


def sh(
    argv: list[str], env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def ensure_docker() -> None:
    if shutil.which("dockerd") is None:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "docker.io"], check=True, env=env)


def busybox_tar(work: Path) -> Path:
    out = work / "images"
    r = sh([str(VENV_BIN / "dockyard-base-images"), "build", "--only", "busybox", str(out)])
    if r.returncode != 0:
        raise SystemExit(f"building busybox failed: {r.stderr}")
    return out / "busybox.tar"


class Engine:
    def __init__(
        self, name: str, argv: list[str], sock: Path, cli: list[str], pidfile: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.sock = sock
        self.cli = cli
        self.pidfile = pidfile
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", DOCKYARD_HOST=f"unix://{sock}")

    def start(self, log: Path) -> None:
        self.proc = subprocess.Popen(
            self.argv, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        for _ in range(600):
            if sh([*self.cli, "version"], env=self.env).returncode == 0:
                return
            time.sleep(0.1)
        raise SystemExit(f"{self.name} did not start; see {log}")

    def run(self, *args: str) -> float:
        t0 = time.perf_counter()
        r = sh([*self.cli, *args], env=self.env)
        elapsed = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"{self.name} {' '.join(args)} failed: {r.stderr}")
        return elapsed

    def rss_kib(self) -> int:
        assert self.proc is not None
        return _rss_kib(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def _pss_kib(pid: int) -> int:
    """Proportional set size: shared library pages split between the processes using them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def _pids_matching(needle: str, exe: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and exe in cmd[0].decode(errors="replace") and needle.encode() in b" ".join(cmd):
            pids.append(int(entry))
    return pids


def _unmount_under(root: Path) -> None:
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for m in sorted((m for m in mounts if m.startswith(str(root))), reverse=True):
        sh(["umount", "-l", m])


def _remove_cgroups(parent: str) -> None:
    """Our cgroup parent in every hierarchy, deepest first (runc leaves empty parents)."""
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / parent
        if top.is_dir():
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), reverse=True):
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--detached", type=int, default=20)
    args = ap.parse_args()
    ensure_docker()
    work = Path(tempfile.mkdtemp(prefix="dybench-", dir="/var/tmp"))
    ours = Engine(
        "dockyard",
        [
            str(VENV_BIN / "dockyardd"),
            "--data-root",
            str(work / "dy-root"),
            "--exec-root",
            "/run/dybench",
            "-H",
            "unix:///run/dybench/d.sock",
            "--cgroup-parent",
            "/dybench",
            "--config-file",
            str(work / "dy.json"),
        ],
        Path("/run/dybench/d.sock"),
        [str(VENV_BIN / "dockyard")],
        Path("/run/dybench/dockyardd.pid"),
    )
    (work / "dy.json").write_text("{}")
    docker = Engine(
        "docker",
        [
            shutil.which("dockerd") or "/usr/sbin/dockerd",
            "--data-root",
            str(work / "dk-root"),
            "--exec-root",
            "/run/dkbench",
            "-H",
            "unix:///run/dkbench/d.sock",
            "--pidfile",
            "/run/dkbench/dockerd.pid",
            "--iptables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--bridge=none",
            "--config-file",
            str(work / "dk.json"),
        ],
        Path("/run/dkbench/d.sock"),
        [DOCKER_CLI],
        Path("/run/dkbench/dockerd.pid"),
    )
    (work / "dk.json").write_text("{}")
    results: dict[str, float] = {}
    try:
        image = busybox_tar(work)
        ours.start(work / "dockyardd.log")
        docker.start(work / "dockerd.log")
        for e in (ours, docker):
            e.run("load", "-i", str(image))
        time.sleep(2)
        results["idle_rss_ours_mib"] = ours.rss_kib() / 1024
        results["idle_rss_docker_mib"] = docker.rss_kib() / 1024
        # Warm-up, then alternate.
        for e in (ours, docker):
            e.run("run", "--rm", "busybox", "true")
        times: dict[str, list[float]] = {"dockyard": [], "docker": []}
        for _ in range(args.runs):
            for e in (ours, docker):
                times[e.name].append(e.run("run", "--rm", "--network", "none", "busybox", "true"))
        results["run_rm_ours_s"] = statistics.median(times["dockyard"])
        results["run_rm_docker_s"] = statistics.median(times["docker"])
        detached: dict[str, float] = {}
        for e in (ours, docker):
            t0 = time.perf_counter()
            for _ in range(args.detached):
                e.run("run", "-d", "--network", "none", "busybox", "sleep", "600")
            detached[e.name] = time.perf_counter() - t0
        results["run_d_20_ours_s"] = detached["dockyard"]
        results["run_d_20_docker_s"] = detached["docker"]
        time.sleep(1)
        conmons = _pids_matching("/run/dybench", "conmon")
        shims = _pids_matching("/run/dkbench", "containerd-shim")
        results["per_container_rss_ours_mib"] = (
            sum(_rss_kib(p) for p in conmons) / max(len(conmons), 1) / 1024
        )
        results["per_container_rss_docker_mib"] = (
            sum(_rss_kib(p) for p in shims) / max(len(shims), 1) / 1024
        )
        results["per_container_pss_ours_mib"] = (
            sum(_pss_kib(p) for p in conmons) / max(len(conmons), 1) / 1024
        )
        results["per_container_pss_docker_mib"] = (
            sum(_pss_kib(p) for p in shims) / max(len(shims), 1) / 1024
        )
        results["busy_rss_ours_mib"] = ours.rss_kib() / 1024
        results["busy_rss_docker_mib"] = docker.rss_kib() / 1024
        for e in (ours, docker):
            ids = sh([*e.cli, "ps", "-aq"], env=e.env).stdout.split()
            if ids:
                sh([*e.cli, "rm", "-f", *ids], env=e.env, timeout=600)
    finally:
        ours.stop()
        docker.stop()
        for root in (work, Path("/run/dybench"), Path("/run/dkbench")):
            _unmount_under(root)
        for pid in _pids_matching("/run/dybench", "conmon"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)
        _remove_cgroups("dybench")
        shutil.rmtree("/run/dybench", ignore_errors=True)
        shutil.rmtree("/run/dkbench", ignore_errors=True)
    ratio_run = results["run_rm_ours_s"] / results["run_rm_docker_s"]
    ratio_d = results["run_d_20_ours_s"] / results["run_d_20_docker_s"]
    lines = [
        f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC — {platform.node()} ({os.cpu_count()} cores, {platform.release()})",
        "",
        "| measure | dockyard | docker 20.10 | ratio |",
        "|---|---|---|---|",
        f"| `run --rm busybox true`, median of {args.runs} | {results['run_rm_ours_s']:.3f} s | {results['run_rm_docker_s']:.3f} s | {ratio_run:.2f}× |",
        f"| {args.detached} × `run -d busybox sleep 600` | {results['run_d_20_ours_s']:.2f} s | {results['run_d_20_docker_s']:.2f} s | {ratio_d:.2f}× |",
        f"| idle daemon RSS | {results['idle_rss_ours_mib']:.1f} MiB | {results['idle_rss_docker_mib']:.1f} MiB | |",
        f"| daemon RSS with {args.detached} containers | {results['busy_rss_ours_mib']:.1f} MiB | {results['busy_rss_docker_mib']:.1f} MiB | |",
        f"| per-container monitor RSS (conmon / containerd-shim) | {results['per_container_rss_ours_mib']:.2f} MiB | {results['per_container_rss_docker_mib']:.2f} MiB | {results['per_container_rss_ours_mib'] / results['per_container_rss_docker_mib']:.2f}× |",
        f"| per-container monitor PSS | {results['per_container_pss_ours_mib']:.2f} MiB | {results['per_container_pss_docker_mib']:.2f} MiB | {results['per_container_pss_ours_mib'] / results['per_container_pss_docker_mib']:.2f}× |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    results_file = HERE / "RESULTS.md"
    if not results_file.exists():
        results_file.write_text(
            "# Benchmark results\n\nTargets: start ≤ 0.5× Docker's wall time; ≤ 2 MiB RSS per container; idle daemon ≤ 50 MiB.\n\n"
        )
    with results_file.open("a") as f:
        f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
