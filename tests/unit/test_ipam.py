"""IPAM and DNS answers: pure functions, tables of input → output."""

from __future__ import annotations

import ipaddress

import pytest
from dnslib import QTYPE, DNSRecord

from dockyard import errors
from dockyard.networks import ipam
from dockyard.networks.dns import answer

pytestmark = pytest.mark.unit

N = ipaddress.IPv4Network


def test_allocate_address_skips_gateway_and_used() -> None:
    cfg = ipam.parse_ipam_config({"Subnet": "10.213.5.0/24"})
    assert cfg is not None and str(cfg.gateway) == "10.213.5.1"
    used = [ipaddress.IPv4Address("10.213.5.2")]
    assert str(ipam.allocate_address(cfg, used)) == "10.213.5.3"
    assert str(ipam.allocate_address(cfg, used, "10.213.5.9")) == "10.213.5.9"
    with pytest.raises(errors.InvalidArgument):
        ipam.allocate_address(cfg, used, "10.213.5.2")


def test_exhausted_subnet() -> None:
    cfg = ipam.parse_ipam_config({"Subnet": "10.213.5.0/30"})
    assert cfg is not None
    assert str(ipam.allocate_address(cfg, [])) == "10.213.5.2"
    with pytest.raises(errors.Unavailable):
        ipam.allocate_address(cfg, [ipaddress.IPv4Address("10.213.5.2")])


def test_overlap_message_and_subnet_pools() -> None:
    with pytest.raises(errors.InvalidArgument, match="Pool overlaps"):
        ipam.check_overlap(N("10.213.0.0/25"), [N("10.213.0.0/24")])
    pools = ipam.parse_pools([{"base": "10.213.0.0/16", "size": 24}])
    assert ipam.allocate_subnet(pools, [N("10.213.0.0/24")]) == N("10.213.1.0/24")


def test_bip_and_mac() -> None:
    cfg = ipam.parse_bip("10.213.7.1/24")
    assert (str(cfg.subnet), str(cfg.gateway)) == ("10.213.7.0/24", "10.213.7.1")
    with pytest.raises(errors.InvalidArgument):
        ipam.parse_bip("10.213.7.0/24")
    assert ipam.mac_for(ipaddress.IPv4Address("172.17.0.2")) == "02:42:ac:11:00:02"


def test_dns_answer_for_our_names_only() -> None:
    names = {"web": ["10.213.5.2"]}
    reply = answer(DNSRecord.question("web").pack(), names.get)
    assert reply is not None
    parsed = DNSRecord.parse(reply)
    assert [str(r.rdata) for r in parsed.rr] == ["10.213.5.2"]
    assert answer(DNSRecord.question("example.org").pack(), names.get) is None
    aaaa = answer(DNSRecord.question("web", "AAAA").pack(), names.get)
    assert aaaa is not None and DNSRecord.parse(aaaa).rr == []
    assert QTYPE.A == 1
