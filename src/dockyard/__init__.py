"""Dockyard: a container engine with Docker's architecture and Engine API."""

__version__ = "0.1.0"
__all__ = ["__version__"]
