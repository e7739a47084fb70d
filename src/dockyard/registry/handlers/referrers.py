"""``GET /v2/<name>/referrers/<digest>[?artifactType=...]``: the OCI 1.1 referrers API.

Always 200 with an OCI image index (an unknown subject or repository has no referrers, and
the spec forbids 404 here); 400 DIGEST_INVALID for a malformed digest. Each descriptor carries
the referrer's media type, size, digest, ``artifactType`` (the manifest's own, else its config
media type; omitted for an index without one) and annotations. ``artifactType`` filters and
is acknowledged with ``OCI-Filters-Applied: artifactType``. Pages hold ``MAX_PAGE`` entries in
digest order; the ``Link`` header's ``last`` parameter continues after a digest.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from dockyard.oci import mediatypes
from dockyard.registry.access import Access
from dockyard.registry.handlers.base import (
    MAX_PAGE,
    authorize,
    parse_digest,
    repository,
    repository_name,
)

__all__ = ["list_referrers"]


async def list_referrers(request: web.Request) -> web.Response:
    name = repository_name(request)
    subject = parse_digest(request.match_info["digest"])
    await authorize(request, [Access.repository(name, "pull")])
    artifact_type = request.query.get("artifactType") or None
    last = request.query.get("last") or None
    referrers = await repository(request, name).list_referrers(subject)
    manifests: list[dict[str, Any]] = []
    for ref in referrers:
        if last is not None and ref.digest <= last:
            continue
        at = ref.manifest.referrer_artifact_type()
        if artifact_type is not None and at != artifact_type:
            continue
        desc: dict[str, Any] = {
            "mediaType": ref.manifest.media_type,
            "digest": ref.digest,
            "size": ref.size,
        }
        if at:
            desc["artifactType"] = at
        if ref.manifest.annotations:
            desc["annotations"] = dict(ref.manifest.annotations)
        manifests.append(desc)
    headers = {}
    if artifact_type is not None:
        headers["OCI-Filters-Applied"] = "artifactType"
    if len(manifests) > MAX_PAGE:
        manifests = manifests[:MAX_PAGE]
        query = {"last": manifests[-1]["digest"]}
        if artifact_type is not None:
            query["artifactType"] = artifact_type
        headers["Link"] = f'</v2/{name}/referrers/{subject}?{urlencode(query)}>; rel="next"'
    body = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": manifests}
    return web.Response(
        body=json.dumps(body).encode(), headers=headers, content_type=mediatypes.OCI_INDEX
    )
