"""The ``/v2/`` routes, one module per resource. ``ROUTES`` is the whole table.

``<name>`` is matched loosely (``.+``) and validated by the handler, so a malformed name
answers NAME_INVALID instead of 404. Order matters where patterns overlap: upload session
routes come before ``blobs/<digest>``. GET routes answer HEAD too.
"""

from __future__ import annotations

from aiohttp import web

from dockyard.registry.handlers import blobs, catalog, manifests, referrers, tags, uploads

__all__ = ["ROUTES"]

_NAME = "{name:.+}"

ROUTES: list[web.RouteDef] = [
    web.route("GET", "/v2/", catalog.version_check),
    web.route("GET", "/v2", catalog.version_check),
    web.route("GET", "/v2/_catalog", catalog.catalog),
    web.route("GET", f"/v2/{_NAME}/tags/list", tags.list_tags),
    web.route("GET", f"/v2/{_NAME}/manifests/{{reference:[^/]+}}", manifests.get_manifest),
    web.route("PUT", f"/v2/{_NAME}/manifests/{{reference:[^/]+}}", manifests.put_manifest),
    web.route("DELETE", f"/v2/{_NAME}/manifests/{{reference:[^/]+}}", manifests.delete_manifest),
    web.route("POST", f"/v2/{_NAME}/blobs/uploads/", uploads.start_upload),
    web.route("POST", f"/v2/{_NAME}/blobs/uploads", uploads.start_upload),
    web.route("GET", f"/v2/{_NAME}/blobs/uploads/{{uuid:[^/]+}}", uploads.upload_status),
    web.route("PATCH", f"/v2/{_NAME}/blobs/uploads/{{uuid:[^/]+}}", uploads.patch_upload),
    web.route("PUT", f"/v2/{_NAME}/blobs/uploads/{{uuid:[^/]+}}", uploads.finish_upload),
    web.route("DELETE", f"/v2/{_NAME}/blobs/uploads/{{uuid:[^/]+}}", uploads.cancel_upload),
    web.route("GET", f"/v2/{_NAME}/blobs/{{digest:[^/]+}}", blobs.get_blob),
    web.route("DELETE", f"/v2/{_NAME}/blobs/{{digest:[^/]+}}", blobs.delete_blob),
    web.route("GET", f"/v2/{_NAME}/referrers/{{digest:[^/]+}}", referrers.list_referrers),
]
