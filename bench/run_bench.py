#!/opt/dockyard-venv/bin/python
"""Dockyard vs Docker (Debian's docker.io) side by side, in one run.

Starts a private dockyardd and a private dockerd (own data/exec roots, sockets, bridge,
``--iptables=false``), loads the same busybox image into both, then measures alternately:

1. ``run --rm busybox true`` wall time (our CLI against dockyardd, docker CLI against dockerd)
2. 20 sequential ``run -d busybox sleep 600``
3. RSS of the idle daemon, and host memory per running container (monitor RSS:
   dockyard-monitor (or conmon) for us, containerd-shim for docker)

Prints medians and ratios and appends them to bench/RESULTS.md. Stops both daemons by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
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


def base_images(work: Path) -> list[Path]:
    """busybox and nginx from our offline builder (cached), loaded into both engines."""
    out = work / "images"
    r = sh(
        [str(VENV_BIN / "dockyard-base-images"), "build", "--only", "busybox,nginx", str(out)],
        timeout=1800,
    )
    if r.returncode != 0:
        raise SystemExit(f"building base images failed: {r.stderr}")
    return [out / "busybox.tar", out / "nginx.tar"]


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


MONITOR_NAME = ["conmon"]


def _monitor_pids() -> list[int]:
    """Our per-container monitors: dockyard-monitor when installed, else conmon."""
    for exe in ("dockyard-monitor", "conmon"):
        pids = _pids_matching("/run/dybench", exe)
        if pids:
            MONITOR_NAME[0] = exe
            return pids
    return []


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


BRIDGE_OURS = ("dybench0", "10.214.1.1/24")
BRIDGE_DOCKER = ("dkbench0", "10.214.2.1/24")
DOCKERFILE = """FROM busybox
COPY blob /blob
RUN wc -c /blob > /size
ENV GREETING=hello
CMD ["cat", "/size"]
"""


def _ensure_bridge(name: str, cidr: str) -> None:
    """dockerd's --bridge wants an existing bridge; ours creates its own."""
    if sh(["ip", "link", "show", name]).returncode != 0:
        sh(["ip", "link", "add", name, "type", "bridge"])
        sh(["ip", "addr", "add", cidr, "dev", name])
        sh(["ip", "link", "set", name, "up"])


def _ab(port: int, requests: int) -> float:
    """Requests per second through a published port (ApacheBench, keep-alive, 16 clients)."""
    r = sh(
        ["ab", "-q", "-k", "-n", str(requests), "-c", "16", f"http://127.0.0.1:{port}/"],
        timeout=300,
    )
    for line in r.stdout.splitlines():
        if line.startswith("Requests per second:"):
            return float(line.split()[3])
    raise SystemExit(f"ab failed: {r.stdout} {r.stderr}")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--detached", type=int, default=20)
    ap.add_argument("--builds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=5000)
    args = ap.parse_args()
    ensure_docker()
    work = Path(tempfile.mkdtemp(prefix="dybench-", dir="/var/tmp"))
    (work / "dy.json").write_text(json.dumps({"bridge": BRIDGE_OURS[0], "bip": BRIDGE_OURS[1]}))
    (work / "dk.json").write_text("{}")
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
            f"--bridge={BRIDGE_DOCKER[0]}",
            "--config-file",
            str(work / "dk.json"),
        ],
        Path("/run/dkbench/d.sock"),
        [DOCKER_CLI],
        Path("/run/dkbench/dockerd.pid"),
    )
    docker.env["DOCKER_BUILDKIT"] = "0"
    engines = (ours, docker)
    results: dict[str, float] = {}
    try:
        images = base_images(work)
        _ensure_bridge(*BRIDGE_DOCKER)
        ours.start(work / "dockyardd.log")
        docker.start(work / "dockerd.log")
        for e in engines:
            for image in images:
                e.run("load", "-i", str(image))
        time.sleep(2)
        results["idle_rss_ours_mib"] = ours.rss_kib() / 1024
        results["idle_rss_docker_mib"] = docker.rss_kib() / 1024
        for e in engines:  # warm-up
            e.run("run", "--rm", "busybox", "true")
        for label, extra in (("none", ["--network", "none"]), ("bridge", [])):
            times: dict[str, list[float]] = {"dockyard": [], "docker": []}
            for _ in range(args.runs):
                for e in engines:
                    times[e.name].append(e.run("run", "--rm", *extra, "busybox", "true"))
            results[f"run_{label}_ours_s"] = statistics.median(times["dockyard"])
            results[f"run_{label}_docker_s"] = statistics.median(times["docker"])
        detached: dict[str, float] = {}
        for e in engines:
            t0 = time.perf_counter()
            for _ in range(args.detached):
                e.run("run", "-d", "--network", "none", "busybox", "sleep", "600")
            detached[e.name] = time.perf_counter() - t0
        results["run_d_ours_s"] = detached["dockyard"]
        results["run_d_docker_s"] = detached["docker"]
        time.sleep(1)
        conmons = _monitor_pids()
        results["monitors_counted"] = len(conmons)
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
        for e in engines:
            ids = sh([*e.cli, "ps", "-aq"], env=e.env).stdout.split()
            if ids:
                sh([*e.cli, "rm", "-f", *ids], env=e.env, timeout=600)
        # Published-port throughput: nginx behind 127.0.0.1:PORT (our proxy vs docker-proxy).
        ports = {}
        for e in engines:
            ports[e.name] = _free_port()
            e.run("run", "-d", "--name", "web", "-p", f"127.0.0.1:{ports[e.name]}:80", "nginx")
        time.sleep(1)
        rps: dict[str, list[float]] = {"dockyard": [], "docker": []}
        for _ in range(3):
            for e in engines:
                rps[e.name].append(_ab(ports[e.name], args.requests))
        results["rps_ours"] = statistics.median(rps["dockyard"])
        results["rps_docker"] = statistics.median(rps["docker"])
        for e in engines:
            sh([*e.cli, "rm", "-f", "web"], env=e.env, timeout=120)
        # Build: cold (--no-cache) and fully cached, alternately.
        ctx = work / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        (ctx / "blob").write_bytes(os.urandom(10 * 1024 * 1024))
        builds: dict[str, list[float]] = {
            "dockyard_cold": [],
            "docker_cold": [],
            "dockyard_cached": [],
            "docker_cached": [],
        }
        for _ in range(args.builds):
            for e in engines:
                builds[f"{e.name}_cold"].append(
                    e.run("build", "--no-cache", "-q", "-t", "benchbuild", str(ctx))
                )
            for e in engines:
                builds[f"{e.name}_cached"].append(
                    e.run("build", "-q", "-t", "benchbuild", str(ctx))
                )
        for key, values in builds.items():
            results[f"build_{key}_s"] = statistics.median(values)
    finally:
        for e in engines:
            e.stop()
        for root in (work, Path("/run/dybench"), Path("/run/dkbench")):
            _unmount_under(root)
        for pid in _monitor_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)
        _remove_cgroups("dybench")
        shutil.rmtree("/run/dybench", ignore_errors=True)
        shutil.rmtree("/run/dkbench", ignore_errors=True)
        for bridge in (BRIDGE_DOCKER[0], BRIDGE_OURS[0]):
            sh(["ip", "link", "del", bridge])
    write_results(results, args)
    return 0


def _row(
    label: str, ours: float, docker: float, unit: str, fmt: str = ".3f", higher_better: bool = False
) -> str:
    ratio = ours / docker if docker else float("nan")
    return f"| {label} | {ours:{fmt}} {unit} | {docker:{fmt}} {unit} | {ratio:.2f}× |"


def write_results(r: dict[str, float], args: argparse.Namespace) -> None:
    lines = [
        f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC — {platform.node()} ({os.cpu_count()} cores, {platform.release()})",
        "",
        "| measure | dockyard | docker 20.10 | ratio (ours / docker) |",
        "|---|---|---|---|",
        _row(
            f"`run --rm --network none busybox true`, median of {args.runs}",
            r["run_none_ours_s"],
            r["run_none_docker_s"],
            "s",
        ),
        _row(
            f"`run --rm busybox true` on the bridge, median of {args.runs}",
            r["run_bridge_ours_s"],
            r["run_bridge_docker_s"],
            "s",
        ),
        _row(
            f"{args.detached} × `run -d busybox sleep 600`",
            r["run_d_ours_s"],
            r["run_d_docker_s"],
            "s",
            ".2f",
        ),
        _row("idle daemon RSS", r["idle_rss_ours_mib"], r["idle_rss_docker_mib"], "MiB", ".1f"),
        _row(
            f"daemon RSS with {args.detached} containers",
            r["busy_rss_ours_mib"],
            r["busy_rss_docker_mib"],
            "MiB",
            ".1f",
        ),
        _row(
            f"per-container monitor RSS ({MONITOR_NAME[0]} / containerd-shim)",
            r["per_container_rss_ours_mib"],
            r["per_container_rss_docker_mib"],
            "MiB",
            ".2f",
        ),
        _row(
            "per-container monitor PSS",
            r["per_container_pss_ours_mib"],
            r["per_container_pss_docker_mib"],
            "MiB",
            ".2f",
        ),
        _row(
            "HTTP req/s to nginx via 127.0.0.1 published port (ours / docker-proxy)",
            r["rps_ours"],
            r["rps_docker"],
            "req/s",
            ".0f",
        ),
        _row(
            f"cold build (FROM, COPY 10 MB, RUN, ENV, CMD), median of {args.builds}",
            r["build_dockyard_cold_s"],
            r["build_docker_cold_s"],
            "s",
        ),
        _row(
            f"fully cached rebuild, median of {args.builds}",
            r["build_dockyard_cached_s"],
            r["build_docker_cached_s"],
            "s",
        ),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    results_file = HERE / "RESULTS.md"
    if not results_file.exists():
        results_file.write_text("# Benchmark results\n\n")
    with results_file.open("a") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
