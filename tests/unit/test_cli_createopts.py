"""``run``/``create`` flags → create body: byte-identical to the docker CLI 28.2.2's."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.cli.createopts import (
    CreateOptions,
    build_create_body,
    parse_bytes,
    parse_env_file,
    parse_ports,
    parse_restart,
    parse_ulimit,
)
from dockyard.client.wire import go_json
from dockyard.errors import InvalidArgument

pytestmark = pytest.mark.unit

# docker create -p 127.0.0.1:18941:80 -p 8080:8080/udp -p 9000 -p 7000-7001:7000-7001 -P
#   -v vu:/data -v /tmp:/ctr:ro --privileged --cap-add NET_ADMIN --cap-drop chown -m 64m
#   --cpus 0.5 --add-host foo:127.0.0.1 --tmpfs /run --tmpfs /x:size=1m --init
#   --stop-signal SIGQUIT --stop-timeout 5 --read-only --dns 1.1.1.1 --dns-search ex.com
#   --expose 7000 --shm-size 1m --ulimit nofile=100:200 --sysctl net.ipv4.ip_forward=1
#   --log-driver json-file --log-opt max-size=1m -l b=2 -l a=1 busybox   (recorded at API 1.44)
DOCKER_BODY = (
    '{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"Attach'
    'Stderr":true,"ExposedPorts":{"7000/tcp":{},"7001/tcp":{},"80/tcp":{},"8080/udp":{},"9000'
    '/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":'
    '"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"a":"1'
    '","b":"2"},"StopSignal":"SIGQUIT","StopTimeout":5,"HostConfig":{"Binds":["vu:/data","/tm'
    'p:/ctr:ro"],"ContainerIDFile":"","LogConfig":{"Type":"json-file","Config":{"max-size":"1'
    'm"}},"NetworkMode":"default","PortBindings":{"7000/tcp":[{"HostIp":"","HostPort":"7000"}'
    '],"7001/tcp":[{"HostIp":"","HostPort":"7001"}],"80/tcp":[{"HostIp":"127.0.0.1","HostPort'
    '":"18941"}],"8080/udp":[{"HostIp":"","HostPort":"8080"}],"9000/tcp":[{"HostIp":"","HostP'
    'ort":""}]},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"Volum'
    'eDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":["CAP_NET_ADMIN"],"CapDrop":'
    '["CAP_CHOWN"],"CgroupnsMode":"","Dns":["1.1.1.1"],"DnsOptions":[],"DnsSearch":["ex.com"]'
    ',"ExtraHosts":["foo:127.0.0.1"],"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"O'
    'omScoreAdj":0,"PidMode":"","Privileged":true,"PublishAllPorts":true,"ReadonlyRootfs":tru'
    'e,"SecurityOpt":null,"Tmpfs":{"/run":"","/x":"size=1m"},"UTSMode":"","UsernsMode":"","Sh'
    'mSize":1048576,"Sysctls":{"net.ipv4.ip_forward":"1"},"Isolation":"","CpuShares":0,"Memor'
    'y":67108864,"NanoCpus":500000000,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":['
    '],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDevice'
    'WriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"C'
    'pusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":nul'
    'l,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"Pid'
    'sLimit":0,"Ulimits":[{"Name":"nofile","Hard":200,"Soft":100}],"CpuCount":0,"CpuPercent":'
    '0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null,"Init'
    '":true},"NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Links":null'
    ',"Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","Endpoin'
    'tID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address"'
    ':"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}'
)


def test_many_flags_match_docker_byte_for_byte() -> None:
    opts = CreateOptions(
        image="busybox",
        publish=["127.0.0.1:18941:80", "8080:8080/udp", "9000", "7000-7001:7000-7001"],
        publish_all=True,
        volumes=["vu:/data", "/tmp:/ctr:ro"],
        privileged=True,
        cap_add=["NET_ADMIN"],
        cap_drop=["chown"],
        memory="64m",
        cpus="0.5",
        add_hosts=["foo:127.0.0.1"],
        tmpfs=["/run", "/x:size=1m"],
        init=True,
        stop_signal="SIGQUIT",
        stop_timeout=5,
        read_only=True,
        dns=["1.1.1.1"],
        dns_search=["ex.com"],
        expose=["7000"],
        shm_size="1m",
        ulimits=["nofile=100:200"],
        sysctls=["net.ipv4.ip_forward=1"],
        log_driver="json-file",
        log_opts=["max-size=1m"],
        labels=["b=2", "a=1"],
    )
    assert go_json(build_create_body(opts)) == DOCKER_BODY


def test_interactive_tty_and_detach_flags() -> None:
    body = build_create_body(CreateOptions(image="busybox", interactive=True, tty=True))
    assert [body[k] for k in ("AttachStdin", "AttachStdout", "Tty", "OpenStdin", "StdinOnce")] == [
        True,
        True,
        True,
        True,
        True,
    ]
    body = build_create_body(CreateOptions(image="busybox", interactive=True, detach=True))
    assert [
        body[k] for k in ("AttachStdin", "AttachStdout", "AttachStderr", "OpenStdin", "StdinOnce")
    ] == [False, False, False, True, False]


def test_user_network_has_no_default_endpoint() -> None:
    body = build_create_body(CreateOptions(image="busybox", network="n"))
    assert body["HostConfig"]["NetworkMode"] == "n"
    assert body["NetworkingConfig"] == {"EndpointsConfig": {}}


def test_env_file_format(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_text("\ufeffA=1\n  # c\n\nB\nC= x y \nMISSING\n")
    assert parse_env_file(str(path), {"B": "b"}.get) == ["A=1", "B=b", "C= x y "]
    path.write_text("BAD KEY=1\n")
    with pytest.raises(InvalidArgument, match="variable 'BAD KEY' contains whitespaces"):
        parse_env_file(str(path))
    with pytest.raises(InvalidArgument, match="no such file or directory"):
        parse_env_file(str(tmp_path / "nope"))


@pytest.mark.parametrize(
    ("spec", "exposed", "bindings"),
    [
        ("80", ["80/tcp"], {"80/tcp": [("", "")]}),
        ("8080:80", ["80/tcp"], {"80/tcp": [("", "8080")]}),
        ("127.0.0.1::80/udp", ["80/udp"], {"80/udp": [("127.0.0.1", "")]}),
        ("[::1]:8080:80", ["80/tcp"], {"80/tcp": [("::1", "8080")]}),
        ("8000-8001:80", ["80/tcp"], {"80/tcp": [("", "8000-8001")]}),
    ],
)
def test_port_specs(
    spec: str, exposed: list[str], bindings: dict[str, list[tuple[str, str]]]
) -> None:
    got_exposed, got_bindings = parse_ports([spec])
    assert list(got_exposed) == exposed
    assert {
        k: [(b["HostIp"], b["HostPort"]) for b in v] for k, v in got_bindings.items()
    } == bindings


@pytest.mark.parametrize("spec", ["80/xyz", "a:b:c:d", "0", "8000-8002:80-81"])
def test_bad_port_specs(spec: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_ports([spec])


def test_values() -> None:
    assert parse_bytes("64m") == 64 << 20
    assert parse_bytes("1.5GB") == 3 << 29
    assert parse_bytes("100") == 100
    with pytest.raises(InvalidArgument):
        parse_bytes("lots")
    assert parse_ulimit("nofile=100") == {"Name": "nofile", "Hard": 100, "Soft": 100}
    with pytest.raises(InvalidArgument, match="soft limit must be less"):
        parse_ulimit("nofile=3:2")
    assert parse_restart("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert parse_restart("no") == {"Name": "no", "MaximumRetryCount": 0}
    with pytest.raises(InvalidArgument, match="maximum retry count must be an integer"):
        parse_restart("on-failure:x")


def test_rm_conflicts_with_restart() -> None:
    with pytest.raises(InvalidArgument, match="cannot specify both --restart and --rm"):
        build_create_body(CreateOptions(image="b", auto_remove=True, restart="always"))
    assert build_create_body(CreateOptions(image="b", auto_remove=True, restart="no"))
