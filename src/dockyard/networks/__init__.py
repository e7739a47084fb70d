"""Networking: bridge driver (pyroute2), IPAM, published ports (iptables + proxy), embedded DNS."""

from dockyard.networks.service import NetSetup, NetworkConfig, NetworkService

__all__ = ["NetSetup", "NetworkConfig", "NetworkService"]
