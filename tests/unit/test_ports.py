"""Published port requests from ExposedPorts / PortBindings / PublishAllPorts."""

from __future__ import annotations

import pytest

from dockyard import errors
from dockyard.networks.ports import PortRequest, parse_port_key, ports_from_config

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("config", "host_config", "expected"),
    [
        ({}, {}, []),
        (
            {},
            {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18941"}]}},
            [PortRequest("tcp", 80, "127.0.0.1", 18941)],
        ),
        ({}, {"PortBindings": {"53/udp": [{"HostPort": ""}]}}, [PortRequest("udp", 53, "", 0)]),
        (
            {"ExposedPorts": {"80/tcp": {}, "81/tcp": {}}},
            {"PublishAllPorts": True, "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}},
            [PortRequest("tcp", 80, "", 8080), PortRequest("tcp", 81, "", 0)],
        ),
        ({}, {"PortBindings": {"80/tcp": [{"HostIp": "::", "HostPort": "1"}]}}, []),
    ],
)
def test_ports_from_config(config: dict, host_config: dict, expected: list) -> None:  # type: ignore[type-arg]
    assert ports_from_config(config, host_config) == expected


def test_bad_keys() -> None:
    assert parse_port_key("80") == (80, "tcp")
    for bad in ("x/tcp", "80/foo", "0/tcp", "70000/tcp"):
        with pytest.raises(errors.InvalidArgument):
            parse_port_key(bad)
