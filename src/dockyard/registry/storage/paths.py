"""The one path mapper: every driver path the registry reads or writes is built here.

The layout is distribution's (``registry/storage/paths.go``), so a store written by one can be
read by the other, plus a ``_manifests/referrers`` index of our own::

    /docker/registry/v2/
      blobs/
        <alg>/<hex[:2]>/<hex>/data                     the bytes of every blob and manifest,
                                                       once, shared by all repositories
      repositories/
        <name>/                                        <name> may hold slashes (library/nginx)
          _layers/<alg>/<hex>/link                     blob <alg>:<hex> is in this repository
          _manifests/
            revisions/<alg>/<hex>/link                 manifest <alg>:<hex> is in this repository
            tags/<tag>/current/link                    the digest <tag> points at now
            tags/<tag>/index/<alg>/<hex>/link          every digest <tag> has pointed at
            referrers/<alg>/<subject hex>/<alg>/<hex>/link
                                                       manifest <alg>:<hex> has that subject
          _uploads/<uuid>/
            data                                       bytes received so far
            startedat                                  RFC 3339 time the session began
            hashstates/<alg>/<offset>                  (distribution's; we never write it)

A link file holds the digest it names (``sha256:<hex>``), nothing else.

Rules every writer keeps (and the garbage collector relies on):

- A blob is visible in a repository only through a link; ``blobs/`` holds only verified bytes
  (uploads are hashed and measured before ``move`` puts them there).
- Blobs and manifests are shared: deleting a link never deletes ``blobs/`` data. Only the
  garbage collector removes blob data, after marking from every repository's manifest
  revisions (config, layers, index children and subjects' referrers are reached through them).
- A referrers link is an index, not a root: it is written with its manifest's revision link
  and removed with it.
- Names, tags, digests and upload ids are validated before a path is built, so no request can
  name a path outside its repository.
"""

from __future__ import annotations

from dockyard.registry import grammar
from dockyard.registry.storage.driver import join
from dockyard.registry.storage.errors import InvalidPath

__all__ = [
    "ROOT",
    "blob_data_path",
    "blob_dir",
    "blobs_root",
    "digest_from_parts",
    "layer_link_path",
    "layers_root",
    "manifest_revision_link_path",
    "manifest_revisions_root",
    "manifests_root",
    "referrer_link_path",
    "referrers_root",
    "repositories_root",
    "repository_root",
    "split_digest",
    "tag_current_link_path",
    "tag_index_link_path",
    "tag_root",
    "tags_root",
    "upload_data_path",
    "upload_root",
    "upload_startedat_path",
    "uploads_root",
]

ROOT = "/docker/registry/v2"


def _name(name: str) -> str:
    if not grammar.is_name(name):
        raise InvalidPath(f"repository {name!r}")
    return name


def split_digest(digest: str) -> tuple[str, str]:
    """``("sha256", "<hex>")``; ``InvalidPath`` for anything but a supported digest."""
    if not grammar.is_digest(digest):
        raise InvalidPath(f"digest {digest!r}")
    alg, _, hex_ = digest.partition(":")
    return alg, hex_


def digest_from_parts(alg: str, hex_: str) -> str:
    """The inverse of ``split_digest`` for names read back from a listing."""
    digest = f"{alg}:{hex_}"
    split_digest(digest)
    return digest


def blobs_root() -> str:
    return join(ROOT, "blobs")


def blob_dir(digest: str) -> str:
    alg, hex_ = split_digest(digest)
    return join(ROOT, "blobs", alg, hex_[:2], hex_)


def blob_data_path(digest: str) -> str:
    return join(blob_dir(digest), "data")


def repositories_root() -> str:
    return join(ROOT, "repositories")


def repository_root(name: str) -> str:
    return join(repositories_root(), _name(name))


def layers_root(name: str) -> str:
    return join(repository_root(name), "_layers")


def layer_link_path(name: str, digest: str) -> str:
    alg, hex_ = split_digest(digest)
    return join(layers_root(name), alg, hex_, "link")


def manifests_root(name: str) -> str:
    return join(repository_root(name), "_manifests")


def manifest_revisions_root(name: str) -> str:
    return join(manifests_root(name), "revisions")


def manifest_revision_link_path(name: str, digest: str) -> str:
    alg, hex_ = split_digest(digest)
    return join(manifest_revisions_root(name), alg, hex_, "link")


def tags_root(name: str) -> str:
    return join(manifests_root(name), "tags")


def tag_root(name: str, tag: str) -> str:
    if not grammar.is_tag(tag):
        raise InvalidPath(f"tag {tag!r}")
    return join(tags_root(name), tag)


def tag_current_link_path(name: str, tag: str) -> str:
    return join(tag_root(name, tag), "current", "link")


def tag_index_link_path(name: str, tag: str, digest: str) -> str:
    alg, hex_ = split_digest(digest)
    return join(tag_root(name, tag), "index", alg, hex_, "link")


def referrers_root(name: str, subject: str) -> str:
    alg, hex_ = split_digest(subject)
    return join(manifests_root(name), "referrers", alg, hex_)


def referrer_link_path(name: str, subject: str, digest: str) -> str:
    alg, hex_ = split_digest(digest)
    return join(referrers_root(name, subject), alg, hex_, "link")


def uploads_root(name: str) -> str:
    return join(repository_root(name), "_uploads")


def upload_root(name: str, upload_id: str) -> str:
    if not grammar.is_upload_id(upload_id):
        raise InvalidPath(f"upload {upload_id!r}")
    return join(uploads_root(name), upload_id)


def upload_data_path(name: str, upload_id: str) -> str:
    return join(upload_root(name, upload_id), "data")


def upload_startedat_path(name: str, upload_id: str) -> str:
    return join(upload_root(name, upload_id), "startedat")
