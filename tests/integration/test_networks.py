"""Networks end to end: bridge, user-defined networks with DNS, published ports, clean-up.

Each test daemon has its own bridge (``dyt…``) and subnet (10.213.N.0/24, pools in
10.213/16); traffic goes only between the host's loopback and the containers started here.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import running_daemon
from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration

HTTPD = "mkdir -p /www && echo hello-$HOSTNAME > /www/index.html && exec httpd -f -p 80 -h /www"


@pytest.fixture(scope="module")
def netd() -> Iterator[TestDaemon]:
    n = secrets.randbelow(200) + 20
    pools = [{"base": f"10.213.{n}.0/24", "size": 28}]
    with running_daemon({"default-address-pools": pools}) as d:
        yield d
    assert_clean(d)


def _links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=10)
    return [line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines()]


def _rules(d: TestDaemon) -> list[str]:
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, timeout=20)
    return [line for line in out.stdout.splitlines() if f"DOCKYARD-{d.bridge}" in line]


def _veths_on(bridge: str) -> list[str]:
    out = subprocess.run(
        ["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True, timeout=10
    )
    return [line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines()]


def assert_clean(d: TestDaemon) -> None:
    """After the daemon stopped with nothing running: no bridge, veth, netns or rule of ours."""
    prefix = d.bridge[:7]
    assert not [n for n in _links() if n == d.bridge or n.startswith(prefix + "-")]
    assert not _rules(d)
    assert not (d.exec_root / "netns").exists() or not list((d.exec_root / "netns").iterdir())


def assert_idle(d: TestDaemon) -> None:
    """While the daemon runs with no containers: no veths, namespaces, port rules."""
    assert _veths_on(d.bridge) == []
    netns = d.exec_root / "netns"
    assert not netns.exists() or list(netns.iterdir()) == []
    assert not [r for r in _rules(d) if "DNAT" in r or "--dport" in r]


@pytest.fixture
def clean(netd: TestDaemon) -> Iterator[TestDaemon]:
    yield netd
    for c in netd.request("GET", "/containers/json?all=1")[1]:
        netd.request("DELETE", f"/containers/{c['Id']}?force=1")
    for n in netd.request("GET", "/networks")[1]:
        if n["Name"] not in ("bridge", "host", "none"):
            netd.request("DELETE", f"/networks/{n['Id']}")
    assert_idle(netd)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 5) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return str(resp.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_default_bridge_address_route_hosts(clean: TestDaemon) -> None:
    r = clean.cli(
        "run", "--rm", "busybox", "sh", "-c", "ip -4 addr show eth0; ip route; cat /etc/hosts"
    )
    assert r.returncode == 0, r.stderr
    subnet = clean.bip.rsplit(".", 2)[0]
    assert f"inet {subnet}." in r.stdout
    assert f"default via {clean.bip.split('/')[0]}" in r.stdout
    assert f"{subnet}." in r.stdout.split("ip6-loopback")[1]


def test_none_and_host_modes(clean: TestDaemon) -> None:
    r = clean.cli("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    assert r.returncode == 0, r.stderr
    assert [line.split(":")[1].strip() for line in r.stdout.splitlines()] == ["lo"]
    r = clean.cli("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link")
    assert r.returncode == 0, r.stderr
    assert clean.bridge in r.stdout


@pytest.mark.parametrize("client", ["dockyard", "docker"])
def test_user_network_dns_by_name_and_alias(clean: TestDaemon, client: str) -> None:
    run = clean.cli if client == "dockyard" else clean.docker
    assert run("network", "create", "n1").returncode == 0
    dup = run("network", "create", "n1")
    assert dup.returncode == 1 and "network with name n1 already exists" in dup.stderr
    r = run("run", "-d", "--name", "web", "--network", "n1", "--network-alias", "www",
            "busybox", "sh", "-c", HTTPD)  # fmt: skip
    assert r.returncode == 0, r.stderr
    for name in ("web", "www", r.stdout.strip()[:12]):
        got = run("run", "--rm", "--network", "n1", "busybox", "wget", "-qO-", f"http://{name}/")
        assert got.returncode == 0, (name, got.stderr)
        assert got.stdout.startswith("hello-"), got.stdout
    # The default bridge does not resolve container names.
    got = run("run", "--rm", "busybox", "wget", "-qO-", "-T", "2", "http://web/")
    assert got.returncode != 0
    rm = run("network", "rm", "n1")
    assert rm.returncode == 1 and "has active endpoints" in rm.stderr
    status, body = clean.request("GET", "/networks/n1")
    assert status == 200 and len(body["Containers"]) == 1


@pytest.fixture
def loopback_dns() -> Iterator[tuple[str, list[str]]]:
    """A DNS server on 127.0.0.77:53 that answers every A query with 10.1.2.3 and records
    the names it was asked (traffic stays on the host's loopback)."""
    import socket
    import threading

    from dnslib import QTYPE, RR, A, DNSRecord

    asked: list[str] = []
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.77", 53))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except OSError:
                continue
            query = DNSRecord.parse(data)
            name = str(query.q.qname).rstrip(".")
            asked.append(name)
            reply = query.reply()
            if query.q.qtype == QTYPE.A:
                reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A("10.1.2.3"), ttl=5))
            sock.sendto(reply.pack(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield "127.0.0.77", asked
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def test_embedded_dns_forwards_to_the_containers_dns(
    clean: TestDaemon, loopback_dns: tuple[str, list[str]]
) -> None:
    server, asked = loopback_dns
    assert clean.cli("network", "create", "n4").returncode == 0
    got = clean.cli("run", "--rm", "--network", "n4", "--dns", server, "busybox",
                    "sh", "-c", "cat /etc/resolv.conf; nslookup outside.test")  # fmt: skip
    assert "nameserver 127.0.0.11" in got.stdout, got.stdout
    assert "10.1.2.3" in got.stdout, (got.stdout, got.stderr)
    assert "outside.test" in asked


def test_network_errors(clean: TestDaemon) -> None:
    status, body = clean.request("GET", "/networks/nosuch")
    assert (status, body["message"]) == (404, "network nosuch not found")
    status, _ = clean.request(
        "POST",
        "/networks/create",
        {"Name": "a1", "IPAM": {"Config": [{"Subnet": "10.213.250.0/24"}]}},
    )
    assert status == 201
    status, body = clean.request(
        "POST",
        "/networks/create",
        {"Name": "a2", "IPAM": {"Config": [{"Subnet": "10.213.250.128/25"}]}},
    )
    assert status == 400 and "overlaps" in body["message"]
    status, body = clean.request("DELETE", "/networks/bridge")
    assert status == 403
    r = clean.cli("run", "--rm", "--network", "nosuchnet", "busybox", "true")
    assert r.returncode != 0 and "network nosuchnet not found" in r.stderr


def test_published_port_and_conflict(clean: TestDaemon) -> None:
    port = _free_port()
    r = clean.cli(
        "run", "-d", "--name", "pub", "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c", HTTPD
    )
    assert r.returncode == 0, r.stderr
    assert _get(f"http://127.0.0.1:{port}/").startswith("hello-")
    out = clean.docker("port", "pub")
    assert out.stdout.strip() == f"80/tcp -> 127.0.0.1:{port}"
    info = clean.request("GET", "/containers/pub/json")[1]
    assert info["NetworkSettings"]["Ports"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
    }
    assert info["NetworkSettings"]["IPAddress"].startswith(clean.bip.rsplit(".", 2)[0])
    veths = len(_veths_on(clean.bridge))
    r = clean.cli(
        "run", "-d", "--name", "clash", "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "60"
    )
    assert r.returncode != 0 and "port is already allocated" in r.stderr
    assert len(_veths_on(clean.bridge)) == veths
    assert len(list((clean.exec_root / "netns").iterdir())) == 1


def test_publish_all_picks_free_ports(clean: TestDaemon) -> None:
    r = clean.docker(
        "run", "-d", "--name", "pall", "--expose", "80", "-P", "busybox", "sh", "-c", HTTPD
    )
    assert r.returncode == 0, r.stderr
    ports = clean.request("GET", "/containers/pall/json")[1]["NetworkSettings"]["Ports"]
    host_port = int(ports["80/tcp"][0]["HostPort"])
    assert host_port > 0
    assert _get(f"http://127.0.0.1:{host_port}/").startswith("hello-")


def test_connect_disconnect_running(clean: TestDaemon) -> None:
    assert clean.cli("network", "create", "n2").returncode == 0
    assert (
        clean.cli(
            "run", "-d", "--name", "srv", "--network", "n2", "busybox", "sh", "-c", HTTPD
        ).returncode
        == 0
    )
    assert clean.cli("run", "-d", "--name", "cli1", "busybox", "sleep", "300").returncode == 0
    r = clean.docker("network", "connect", "n2", "cli1")
    assert r.returncode == 0, r.stderr
    got = clean.docker("exec", "cli1", "wget", "-qO-", "http://srv/")
    assert got.stdout.startswith("hello-"), got.stderr
    nets = clean.request("GET", "/containers/cli1/json")[1]["NetworkSettings"]["Networks"]
    assert set(nets) == {"bridge", "n2"}
    r = clean.docker("network", "disconnect", "n2", "cli1")
    assert r.returncode == 0, r.stderr
    got = clean.docker("exec", "cli1", "ip", "-o", "link")
    assert "eth1" not in got.stdout
    assert len(_veths_on(clean.bridge)) == 1


def test_kill9_restart_keeps_running_and_cleans(clean: TestDaemon) -> None:
    port = _free_port()
    assert clean.cli("network", "create", "n3").returncode == 0
    assert clean.cli("run", "-d", "--name", "k1", "--network", "n3", "-p", f"127.0.0.1:{port}:80",
                     "busybox", "sh", "-c", HTTPD).returncode == 0  # fmt: skip
    assert clean.cli("run", "-d", "--name", "k2", "busybox", "sleep", "300").returncode == 0
    k2_pid = clean.request("GET", "/containers/k2/json")[1]["State"]["Pid"]
    clean.kill9()
    os.kill(k2_pid, signal.SIGKILL)  # k2 dies while the daemon is down
    time.sleep(0.3)
    clean.start()
    assert _get(f"http://127.0.0.1:{port}/").startswith("hello-")
    got = clean.cli("run", "--rm", "--network", "n3", "busybox", "wget", "-qO-", "http://k1/")
    assert got.stdout.startswith("hello-"), got.stderr
    deadline = time.monotonic() + 10
    while len(_veths_on(clean.bridge)) > 0 and time.monotonic() < deadline:
        time.sleep(0.1)  # k2's veth on the default bridge is gone
    assert _veths_on(clean.bridge) == []
    assert len(list((clean.exec_root / "netns").iterdir())) == 1


def test_vanished_bridge_is_made_again(clean: TestDaemon) -> None:
    """Someone deletes our bridge: restart re-attaches running containers, runs re-create it."""
    assert clean.cli("run", "-d", "--name", "b1", "busybox", "sh", "-c", HTTPD).returncode == 0
    ip = clean.request("GET", "/containers/b1/json")[1]["NetworkSettings"]["IPAddress"]
    clean.kill9()
    subprocess.run(["ip", "link", "del", clean.bridge], check=True, timeout=10)
    clean.start()
    assert len(_veths_on(clean.bridge)) == 1
    assert _get(f"http://{ip}/").startswith("hello-")
    subprocess.run(["ip", "link", "del", clean.bridge], check=True, timeout=10)
    got = clean.cli("run", "--rm", "busybox", "wget", "-qO-", f"http://{ip}/")
    assert got.returncode == 1  # b1's veth went with the bridge; the new run still starts
    assert "bad address" not in got.stderr and "bridge" not in got.stderr, got.stderr
    assert clean.cli("network", "inspect", "bridge").returncode == 0
    assert clean.cli("rm", "-f", "b1").returncode == 0


@pytest.fixture(scope="module")
def nginx_image() -> Path:
    """nginx from the project's own offline builder (Debian's nginx on debian:bookworm-slim)."""
    out = Path("/var/cache/dockyard-base/out")
    r = subprocess.run(
        [
            str(
                Path(os.environ.get("VIRTUAL_ENV", "/opt/dockyard-venv"))
                / "bin"
                / "dockyard-base-images"
            ),
            "build",
            "--only",
            "nginx",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if r.returncode != 0:
        pytest.fail(f"building nginx failed: {r.stderr[-2000:]}")
    return out / "nginx.tar"


@pytest.mark.parametrize("client", ["dockyard", "docker"])
def test_nginx_by_name_alias_and_published_port(
    netd: TestDaemon, nginx_image: Path, client: str
) -> None:
    run = netd.cli if client == "dockyard" else netd.docker
    if netd.request("GET", "/images/nginx/json")[0] != 200:
        netd.load(nginx_image)
    net = f"web{secrets.token_hex(3)}"
    name = f"ngx{secrets.token_hex(3)}"
    port = _free_port()
    assert run("network", "create", net).returncode == 0
    try:
        r = run(
            "run",
            "-d",
            "--name",
            name,
            "--network",
            net,
            "--network-alias",
            "frontdoor",
            "-p",
            f"127.0.0.1:{port}:80",
            "nginx",
        )
        assert r.returncode == 0, r.stderr
        for target in (name, "frontdoor"):
            got = run(
                "run", "--rm", "--network", net, "busybox", "wget", "-qO-", f"http://{target}/"
            )
            assert got.returncode == 0, got.stderr
            assert "Welcome to nginx" in got.stdout
        other = run("run", "--rm", "busybox", "wget", "-qO-", "-T", "2", f"http://{name}/")
        assert other.returncode != 0  # the default bridge has no DNS for container names
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    assert b"Welcome to nginx" in resp.read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert '"GET / HTTP/1.1" 200' in run("logs", name).stdout  # access log → stdout
    finally:
        run("rm", "-f", name)
        run("network", "rm", net)
    assert_idle(netd)


@pytest.mark.parametrize("client", ["dockyard", "docker"])
def test_add_host_forms(clean: TestDaemon, client: str) -> None:
    run = clean.cli if client == "dockyard" else clean.docker
    r = run("run", "--rm", "--add-host", "gw:host-gateway", "--add-host", "six=::1",
            "--add-host", "plain:10.9.8.7", "busybox", "cat", "/etc/hosts")  # fmt: skip
    assert r.returncode == 0, r.stderr
    gateway = clean.bip.split("/")[0]
    assert r.stdout.splitlines()[-3:] == [f"{gateway}\tgw", "::1\tsix", "10.9.8.7\tplain"]
    r = run("run", "--rm", "--network", "host", "--add-host", "h:10.9.8.6", "busybox",
            "tail", "-1", "/etc/hosts")  # fmt: skip
    assert r.stdout == "10.9.8.6\th\n", r.stdout
    for bad, message in [
        ("bad", 'bad format for add-host: "bad"'),
        ("x:notip", 'invalid IP address in add-host: "notip"'),
    ]:
        r = run("run", "--rm", "--add-host", bad, "busybox", "true")
        assert r.returncode == 125 and message in r.stderr, r.stderr
    status, body = clean.request(
        "POST", "/containers/create", {"Image": "busybox", "HostConfig": {"ExtraHosts": ["bad"]}}
    )
    assert status == 400 and 'bad format for add-host: "bad"' in body["message"]


@pytest.mark.parametrize("client", ["dockyard", "docker"])
def test_aux_addresses_ipam_driver_ipv6(clean: TestDaemon, client: str) -> None:
    run = clean.cli if client == "dockyard" else clean.docker
    n = secrets.randbelow(200) + 20
    subnet = f"10.214.{n}.0/29"  # 6 hosts: gateway .1, aux .2 and .3
    r = run("network", "create", "--subnet", subnet, "--aux-address", f"r1=10.214.{n}.2",
            "--aux-address", f"r2=10.214.{n}.3", "auxnet")  # fmt: skip
    assert r.returncode == 0, r.stderr
    config = clean.request("GET", "/networks/auxnet")[1]["IPAM"]["Config"][0]
    assert config["AuxiliaryAddresses"] == {"r1": f"10.214.{n}.2", "r2": f"10.214.{n}.3"}
    got = run(
        "run", "--rm", "--network", "auxnet", "busybox", "ip", "-4", "-o", "addr", "show", "eth0"
    )
    assert f"10.214.{n}.4/29" in got.stdout, got.stdout  # .2 and .3 are never handed out
    taken = run("run", "--rm", "--network", "auxnet", "--ip", f"10.214.{n}.2", "busybox", "true")
    assert taken.returncode != 0 and "Address already in use" in taken.stderr
    for argv, message in [
        (("--subnet", f"10.215.{n}.0/24", "--aux-address", "r=10.1.1.1"),
         "no matching subnet for aux-address 10.1.1.1"),
        (("--ipam-driver", "foo"), 'plugin "foo" not found'),
        (("--ipv6",), "IPv6 networks are not supported"),
    ]:  # fmt: skip
        r = run("network", "create", *argv, "badnet")
        assert r.returncode == 1 and message in r.stderr, (argv, r.stderr)
    status, body = clean.request(
        "POST",
        "/networks/create",
        {"Name": "x", "IPAM": {"Config": [{"Subnet": "10.216.0.0/24",
                                            "AuxiliaryAddresses": {"a": "10.1.1.1"}}]}},
    )  # fmt: skip
    assert status == 400 and "must belong to the master pool" in body["message"]
