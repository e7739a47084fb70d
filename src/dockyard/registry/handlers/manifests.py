"""``GET``/``HEAD``/``PUT``/``DELETE /v2/<name>/manifests/<tag-or-digest>``.

Manifests are served byte for byte as pushed, with their own media type as Content-Type.
Content negotiation applies to tags: no ``Accept`` (or ``*/*``) takes anything; otherwise the
stored type must be listed. When it is not and the stored manifest is an index, the
``linux/amd64`` entry is served if its type is acceptable (distribution does the same for old
clients); any other refusal is 404 MANIFEST_UNKNOWN, as in distribution. A request by digest
names exact bytes, so it gets them whatever ``Accept`` says (distribution refuses OCI types
there too; refusing content the client identified by hash protects nobody).

PUT validates (``schema.parse_manifest``), checks that everything referenced is in the
repository, stores, and answers ``OCI-Subject`` when the manifest has a subject. A PUT by
digest may carry ``?tag=a&tag=b`` (OCI 1.1); the accepted tags come back in ``OCI-Tag``.
DELETE by digest removes the revision, its tags and its referrers entry; DELETE by tag
removes only the tag.
"""

from __future__ import annotations

from aiohttp import web

from dockyard.oci import mediatypes
from dockyard.registry import errcode, grammar
from dockyard.registry.access import Access
from dockyard.registry.errcode import RegistryError
from dockyard.registry.handlers.base import (
    authorize,
    manifest_location,
    parse_reference,
    repository,
    repository_name,
    require_deletes,
    require_writable,
)
from dockyard.registry.schema import ManifestInvalid, parse_manifest, stored_media_type
from dockyard.registry.storage import Repository, digest_of
from dockyard.registry.storage.errors import ManifestUnknown

__all__ = ["MAX_MANIFEST_SIZE", "accepts", "delete_manifest", "get_manifest", "put_manifest"]

MAX_MANIFEST_SIZE = 4 * 1024 * 1024


def _accepted_types(values: list[str]) -> set[str]:
    out = set()
    for value in values:
        for part in value.split(","):
            media_type = part.split(";", 1)[0].strip().lower()
            if media_type:
                out.add(media_type)
    return out


def accepts(accept_headers: list[str], media_type: str) -> bool:
    types = _accepted_types(accept_headers)
    if not types or "*/*" in types or media_type in types:
        return True
    return f"{media_type.split('/', 1)[0]}/*" in types


async def _platform_fallback(
    repo: Repository, data: bytes, accept_headers: list[str]
) -> tuple[bytes, str, str] | None:
    try:
        index = parse_manifest(data)
    except ManifestInvalid:
        return None
    for ref in index.manifests:
        if ref.platform and ref.platform[:2] == ("linux", "amd64"):
            if not accepts(accept_headers, ref.media_type):
                continue
            try:
                child = await repo.manifests.get(ref.digest)
            except ManifestUnknown:
                continue
            return child, stored_media_type(child), ref.digest
    return None


async def get_manifest(request: web.Request) -> web.Response:
    name = repository_name(request)
    tag, digest = parse_reference(request.match_info["reference"])
    await authorize(request, [Access.repository(name, "pull")])
    repo = repository(request, name)
    if tag is not None:
        digest = await repo.tags.get(tag)
    assert digest is not None
    data = await repo.manifests.get(digest)
    media_type = stored_media_type(data)
    accept = request.headers.getall("Accept", [])
    if tag is not None and not accepts(accept, media_type):
        fallback = None
        if mediatypes.is_index(media_type):
            fallback = await _platform_fallback(repo, data, accept)
        if fallback is None:
            raise RegistryError(
                errcode.MANIFEST_UNKNOWN,
                f"manifest is a {media_type}, which the Accept header does not list",
                detail={"mediaType": media_type},
            )
        data, media_type, digest = fallback
    etag = f'"{digest}"'
    headers = {"Docker-Content-Digest": digest, "ETag": etag}
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, headers=headers, content_type=media_type)


async def _read_limited(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_MANIFEST_SIZE:
        raise RegistryError(
            errcode.MANIFEST_TOO_LARGE,
            f"manifest of {request.content_length} bytes exceeds {MAX_MANIFEST_SIZE}",
            detail={"limit": MAX_MANIFEST_SIZE},
        )
    buf = bytearray()
    while chunk := await request.content.readany():
        buf += chunk
        if len(buf) > MAX_MANIFEST_SIZE:
            raise RegistryError(
                errcode.MANIFEST_TOO_LARGE,
                f"manifest exceeds {MAX_MANIFEST_SIZE} bytes",
                detail={"limit": MAX_MANIFEST_SIZE},
            )
    return bytes(buf)


async def put_manifest(request: web.Request) -> web.Response:
    name = repository_name(request)
    tag, ref_digest = parse_reference(request.match_info["reference"])
    await authorize(request, [Access.repository(name, "push", "pull")])
    require_writable(request)
    tags = [tag] if tag is not None else request.query.getall("tag", [])
    for t in tags:
        if not grammar.is_tag(t):
            raise RegistryError(errcode.MANIFEST_INVALID, f"invalid tag {t!r}", {"tag": t})
    data = await _read_limited(request)
    parsed = parse_manifest(data, request.headers.get("Content-Type"))
    algorithm = ref_digest.partition(":")[0] if ref_digest else "sha256"
    digest = digest_of(data, algorithm)
    if ref_digest is not None and digest != ref_digest:
        raise RegistryError(
            errcode.DIGEST_INVALID,
            f"manifest hashes to {digest}, not {ref_digest}",
            detail={"expected": ref_digest, "actual": digest},
        )
    await repository(request, name).put_manifest(data, parsed, digest, tags)
    headers = {"Location": manifest_location(name, digest), "Docker-Content-Digest": digest}
    if parsed.subject is not None:
        headers["OCI-Subject"] = parsed.subject.digest
    if ref_digest is not None and tags:
        headers["OCI-Tag"] = ", ".join(tags)
    return web.Response(status=201, headers=headers)


async def delete_manifest(request: web.Request) -> web.Response:
    name = repository_name(request)
    tag, digest = parse_reference(request.match_info["reference"])
    await authorize(request, [Access.repository(name, "delete")])
    require_deletes(request)
    repo = repository(request, name)
    if tag is not None:
        await repo.tags.untag(tag)
    else:
        assert digest is not None
        await repo.delete_manifest(digest)
    return web.Response(status=202)
