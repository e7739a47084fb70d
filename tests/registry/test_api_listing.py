"""Tags list and catalog: ordering, ``n``/``last`` pagination, ``Link`` headers, unknown
repositories."""

from __future__ import annotations

import re

import pytest

from tests.registry.conftest import Server

pytestmark = pytest.mark.unit

_LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


def _tagged(server: Server, name: str, tags: list[str]) -> None:
    data, _ = server.push_image(name, tags[0])
    for tag in tags[1:]:
        server.push_manifest(name, tag, data)


def test_tags_list_is_ascii_sorted(registry: Server) -> None:
    tags = ["v10", "v2", "Latest", "a", "_x", "v1.0"]
    _tagged(registry, "lib/t", tags)
    r = registry.request("GET", "/v2/lib/t/tags/list")
    assert r.status == 200
    assert r.json() == {"name": "lib/t", "tags": sorted(tags)}
    assert r.header("Link") is None


def test_tags_pagination_walks_every_tag_once(registry: Server) -> None:
    tags = [f"t{i:02d}" for i in range(7)]
    _tagged(registry, "pg", tags)
    seen: list[str] = []
    url = "/v2/pg/tags/list?n=3"
    pages = 0
    while url:
        r = registry.request("GET", url)
        assert r.status == 200
        page = r.json()["tags"]
        assert len(page) <= 3
        seen += page
        pages += 1
        link = r.header("Link")
        if link is None:
            break
        m = _LINK.match(link)
        assert m, link
        url = m.group("url")
        assert url.startswith("/v2/pg/tags/list?")
    assert seen == tags and pages == 3


def test_tags_n_and_last(registry: Server) -> None:
    _tagged(registry, "nl", ["a", "b", "c", "d"])
    r = registry.request("GET", "/v2/nl/tags/list?n=2")
    assert r.json()["tags"] == ["a", "b"]
    assert r.header("Link") == '</v2/nl/tags/list?n=2&last=b>; rel="next"'
    r = registry.request("GET", "/v2/nl/tags/list?n=2&last=b")
    assert r.json()["tags"] == ["c", "d"] and r.header("Link") is None
    r = registry.request("GET", "/v2/nl/tags/list?last=b")
    assert r.json()["tags"] == ["c", "d"]
    r = registry.request("GET", "/v2/nl/tags/list?n=10")
    assert r.json()["tags"] == ["a", "b", "c", "d"] and r.header("Link") is None
    r = registry.request("GET", "/v2/nl/tags/list?last=bb&n=1")
    assert r.json()["tags"] == ["c"]


def test_tags_n_zero_is_empty_without_link(registry: Server) -> None:
    _tagged(registry, "z", ["a", "b"])
    r = registry.request("GET", "/v2/z/tags/list?n=0")
    assert r.status == 200 and r.json()["tags"] == [] and r.header("Link") is None


@pytest.mark.parametrize("n", ["-1", "abc", "1.5"])
def test_tags_bad_n_is_400(registry: Server, n: str) -> None:
    _tagged(registry, "bn", ["a"])
    r = registry.request("GET", f"/v2/bn/tags/list?n={n}")
    assert r.status == 400 and r.codes() == ["UNSUPPORTED"]


def test_tags_of_unknown_repository_is_name_unknown(registry: Server) -> None:
    r = registry.request("GET", "/v2/never/pushed/tags/list")
    assert r.status == 404 and r.codes() == ["NAME_UNKNOWN"]


def test_tags_of_repository_with_only_untagged_manifests(registry: Server) -> None:
    _data, _digest = registry.push_image("ut", "tmp")
    registry.request("DELETE", "/v2/ut/manifests/tmp")
    r = registry.request("GET", "/v2/ut/tags/list")
    assert r.status == 200 and r.json() == {"name": "ut", "tags": []}


def test_catalog(any_registry: Server) -> None:
    names = ["b/nested/deep", "a", "b", "c-d", "library/nginx"]
    for name in names:
        any_registry.push_image(name, "v1")
    any_registry.push_blob("blobs-only", b"no manifest here")
    r = any_registry.request("GET", "/v2/_catalog")
    assert r.status == 200
    assert r.json() == {"repositories": sorted(names)}


def test_catalog_pagination(registry: Server) -> None:
    for i in range(5):
        registry.push_image(f"repo{i}", "v1")
    r = registry.request("GET", "/v2/_catalog?n=2")
    assert r.json()["repositories"] == ["repo0", "repo1"]
    assert r.header("Link") == '</v2/_catalog?n=2&last=repo1>; rel="next"'
    r = registry.request("GET", "/v2/_catalog?n=2&last=repo1")
    assert r.json()["repositories"] == ["repo2", "repo3"]
    r = registry.request("GET", "/v2/_catalog?n=2&last=repo3")
    assert r.json()["repositories"] == ["repo4"] and r.header("Link") is None
    r = registry.request("GET", "/v2/_catalog?n=0")
    assert r.json()["repositories"] == [] and r.header("Link") is None


def test_empty_catalog(any_registry: Server) -> None:
    r = any_registry.request("GET", "/v2/_catalog")
    assert r.status == 200 and r.json() == {"repositories": []}
