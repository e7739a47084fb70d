"""``dockyard-registry``: an OCI Distribution Spec v1.1 registry (the ``/v2/`` API).

main.py        command line: ``serve``, ``garbage-collect``
config.py      YAML/TOML configuration → ``RegistryConfig``
app.py         aiohttp application, error middleware, API-version header
handlers/      one module per resource of the ``/v2/`` API
access.py      the authorization hook (``Access``, ``Authorizer``, ``build_authorizer``)
errcode.py     the registered OCI error codes and the one error writer
grammar.py     names, tags, digests, upload ids
schema.py      manifest validation and media types
storage/       driver interface, filesystem and in-memory drivers, path layout, stores
auth/, gc.py   authentication schemes and garbage collection
"""

from dockyard.registry.access import Access, AllowAll, Authorizer, build_authorizer
from dockyard.registry.app import create_app
from dockyard.registry.config import RegistryConfig, load_config, parse_config
from dockyard.registry.errcode import RegistryError

__all__ = [
    "Access",
    "AllowAll",
    "Authorizer",
    "RegistryConfig",
    "RegistryError",
    "build_authorizer",
    "create_app",
    "load_config",
    "parse_config",
]
