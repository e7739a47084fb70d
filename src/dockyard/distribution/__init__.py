"""The registry client: resolve references to endpoints (mirrors, insecure registries), answer
auth challenges, pull (platform selection, parallel verified downloads, parallel unpack),
push (missing blobs only, cross-repository mounts, manifest last), log in, inspect.

Entry point: ``Registries`` (one per engine). Pure helpers — challenge parsing, endpoint
mapping, platform strings, progress messages — live in their own modules for tests.
"""

from dockyard.distribution.auth import AuthConfig, Challenge, parse_challenges
from dockyard.distribution.client import RetryPolicy
from dockyard.distribution.endpoints import Endpoint, EndpointConfig
from dockyard.distribution.metadata import BlobMetadata
from dockyard.distribution.platforms import parse_platform
from dockyard.distribution.pull import PullJob, PullResult
from dockyard.distribution.service import Registries

__all__ = [
    "AuthConfig",
    "BlobMetadata",
    "Challenge",
    "Endpoint",
    "EndpointConfig",
    "PullJob",
    "PullResult",
    "Registries",
    "RetryPolicy",
    "parse_challenges",
    "parse_platform",
]
