"""Typed OCI and Docker image formats: media types, digests, descriptors, manifests,
indexes and image-config helpers. Pure: no I/O; malformed input raises ``InvalidArgument``.
"""

from dockyard.oci import mediatypes
from dockyard.oci.descriptor import Descriptor, Platform
from dockyard.oci.digest import digest_hex, is_sha256, sha256_digest, short_id, validate_digest
from dockyard.oci.image import (
    ZERO_TIME,
    chain_ids,
    created_unix,
    diff_ids,
    docker_config,
    format_rfc3339,
    parse_rfc3339,
    validate_config,
)
from dockyard.oci.manifest import Index, Manifest, canonical_json, parse_index, parse_manifest

__all__ = [
    "ZERO_TIME",
    "Descriptor",
    "Index",
    "Manifest",
    "Platform",
    "canonical_json",
    "chain_ids",
    "created_unix",
    "diff_ids",
    "digest_hex",
    "docker_config",
    "format_rfc3339",
    "is_sha256",
    "mediatypes",
    "parse_index",
    "parse_manifest",
    "parse_rfc3339",
    "sha256_digest",
    "short_id",
    "validate_config",
    "validate_digest",
]
