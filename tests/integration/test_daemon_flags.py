"""dockyardd's own surface: socket permissions, pidfile, config file, ping headers."""

from __future__ import annotations

import grp
import json
import os
import stat
import subprocess

import pytest

from tests.integration.daemon import DOCKYARDD, TestDaemon

pytestmark = pytest.mark.integration


def test_socket_mode_group_and_pidfile(daemon: TestDaemon) -> None:
    st = os.stat(daemon.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_uid == 0
    assert grp.getgrgid(st.st_gid).gr_name == "dockyard"
    pidfile = daemon.exec_root / "dockyardd.pid"
    assert daemon.proc is not None
    assert int(pidfile.read_text()) == daemon.proc.pid


def test_ping_headers_and_version(daemon: TestDaemon) -> None:
    import http.client
    import socket

    conn = http.client.HTTPConnection("localhost")
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(daemon.sock))
    conn.sock = sock
    conn.request("HEAD", "/_ping")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 200
    assert resp.getheader("Api-Version") == "1.44"
    assert resp.getheader("Ostype") == "linux"
    assert resp.getheader("Docker-Experimental") == "false"
    conn.close()
    status, version = daemon.request("GET", "/version")
    assert status == 200 and version["ApiVersion"] == "1.44" and version["MinAPIVersion"] == "1.24"
    status, info = daemon.request("GET", "/info")
    assert info["DockerRootDir"] == str(daemon.data_root)
    assert info["Images"] >= 1


def test_bad_config_file_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "daemon.json"
    bad.write_text(json.dumps({"no-such-key": 1}))
    r = subprocess.run(
        [
            DOCKYARDD,
            "--config-file",
            str(bad),
            "--data-root",
            str(tmp_path / "r"),
            "--exec-root",
            str(tmp_path / "x"),
            "-H",
            f"unix://{tmp_path}/s.sock",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1
    assert "don't match any configuration option: no-such-key" in r.stderr
    assert not (tmp_path / "s.sock").exists()


def test_config_file_sets_roots(tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = TestDaemon(tmp_path)
    # Its own bridge too: with the default one (dockyard0) its shutdown would take down the
    # host's main daemon's bridge and iptables chains.
    config = {"data-root": str(tmp_path / "from-config"), "bridge": d.bridge, "bip": d.bip}
    (tmp_path / "daemon.json").write_text(json.dumps(config))
    # --data-root on the command line wins over the file; the file's key is honoured otherwise.
    d.data_root = tmp_path / "from-config"
    try:
        proc = subprocess.Popen(
            [
                DOCKYARDD,
                "--config-file",
                str(tmp_path / "daemon.json"),
                "--exec-root",
                str(d.exec_root),
                "-H",
                d.host,
                "--cgroup-parent",
                d.cgroup_parent,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        d.proc = proc
        import time

        for _ in range(200):
            if d.sock.exists():
                try:
                    if d.request("GET", "/_ping")[0] == 200:
                        break
                except OSError:
                    pass
            time.sleep(0.05)
        assert d.request("GET", "/info")[1]["DockerRootDir"] == str(tmp_path / "from-config")
        assert (tmp_path / "from-config" / "dockyard.db").exists()
    finally:
        d.close()
