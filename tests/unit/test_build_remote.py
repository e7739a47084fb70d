"""The remote-file downloader behind ``ADD <url>`` and ``docker import <url>``, against a small
aiohttp server on 127.0.0.1: file-name rules, redirects, error statuses, mode and mtime."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from dockyard import errors
from dockyard.build.remote import UNNAMED, download, filename_for, is_url, open_remote

pytestmark = pytest.mark.unit

LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
LAST_MODIFIED_EPOCH = 1445412480


def _app() -> web.Application:
    async def file(request: web.Request) -> web.Response:
        return web.Response(body=b"hello remote\n", headers={"Last-Modified": LAST_MODIFIED})

    async def plain(request: web.Request) -> web.Response:
        return web.Response(body=b"no date\n")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/files/data.txt")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def named(request: web.Request) -> web.Response:
        return web.Response(
            body=b"named\n", headers={"Content-Disposition": 'attachment; filename="from-cd.bin"'}
        )

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="  no such file here \n")

    async def forbidden(request: web.Request) -> web.Response:
        return web.Response(status=403, text="go away")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(4 << 20)})
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"x" * (64 << 10))
        await response.write_eof()
        return response

    async def truncated(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b"short")
        assert request.transport is not None
        request.transport.close()
        return response

    app = web.Application()
    app.router.add_get("/files/data.txt", file)
    app.router.add_get("/files/plain.txt", plain)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_get("/named/", named)
    app.router.add_get("/unnamed/", plain)
    app.router.add_get("/missing.tar", missing)
    app.router.add_get("/forbidden", forbidden)
    app.router.add_get("/broken", broken)
    app.router.add_get("/big.bin", big)
    app.router.add_get("/truncated.bin", truncated)
    return app


def run(body: Callable[[str], Awaitable[None]]) -> None:
    async def main() -> None:
        runner = web.AppRunner(_app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            await body(f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()

    asyncio.run(main())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "disposition", "expected"),
    [
        ("http://h/dir/file.txt", None, "file.txt"),
        ("http://h/dir/file.txt?x=1#frag", None, "file.txt"),
        ("http://h/a%20b.tar", None, "a b.tar"),
        ("http://h/dir/file.txt", 'attachment; filename="other"', "file.txt"),
        ("http://h/dir/", None, ""),
        ("http://h", None, ""),
        ("http://h/", 'attachment; filename="cd.txt"', "cd.txt"),
        ("http://h/", 'attachment; filename="../../etc/passwd"', "passwd"),
        ("http://h/", 'attachment; filename="sub/"', ""),
        ("http://h/", "attachment", ""),
        ("http://h/x/..", None, ""),
        ("http://h/x/%00", None, ""),
    ],
)
def test_filename_rules(url: str, disposition: str | None, expected: str) -> None:
    assert filename_for(url, disposition) == expected


def test_is_url() -> None:
    assert is_url("http://x/y") and is_url("https://x")
    assert not is_url("ftp://x/y") and not is_url("file.txt") and not is_url("git@x:y.git")


def test_download_saves_0600_with_last_modified(tmp_path: Path) -> None:
    messages: list[dict[str, Any]] = []

    async def progress(message: dict[str, Any]) -> None:
        messages.append(message)

    async def body(base: str) -> None:
        got = await download(f"{base}/files/data.txt", tmp_path, progress=progress)
        assert got.filename == "data.txt"
        assert got.path == tmp_path / "data.txt"
        assert got.size == 13
        st = os.stat(got.path)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert int(st.st_mtime) == LAST_MODIFIED_EPOCH
        assert got.path.read_bytes() == b"hello remote\n"
        other = tmp_path / "other"
        other.mkdir()
        got = await download(f"{base}/files/plain.txt", other)
        assert os.stat(got.path).st_mtime == 0  # no Last-Modified: the epoch, as moby

    run(body)
    # the last progress is complete, then moby's empty "new line" message
    assert messages[-1] == {}
    assert messages[-2]["status"] == "Downloading"
    assert messages[-2]["progressDetail"] == {"current": 13, "total": 13}
    assert messages[-2]["progress"].endswith("13B/13B")


def test_download_follows_redirects_and_names_from_the_original_url(tmp_path: Path) -> None:
    async def body(base: str) -> None:
        got = await download(f"{base}/redirect", tmp_path)
        assert got.filename == "redirect"  # the URL asked for, as moby (not the redirect's)
        assert got.path.read_bytes() == b"hello remote\n"
        with pytest.raises(errors.SystemError) as info:
            await download(f"{base}/loop", tmp_path / "nowhere")
        assert info.value.message == f'Get "{base}/loop": stopped after 10 redirects'

    run(body)


def test_download_without_a_name(tmp_path: Path) -> None:
    async def body(base: str) -> None:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        got = await download(f"{base}/named/", tmp_path / "a")
        assert (got.filename, got.path.name) == ("from-cd.bin", "from-cd.bin")
        got = await download(f"{base}/unnamed/", tmp_path / "b")
        assert (got.filename, got.path.name) == ("", UNNAMED)
        assert got.path.read_bytes() == b"no date\n"

    run(body)


def test_error_statuses_read_like_dockerd(tmp_path: Path) -> None:
    async def body(base: str) -> None:
        cases: list[tuple[str, type[errors.DockyardError], str]] = [
            ("/missing.tar", errors.NotFound, "404 Not Found: no such file here"),
            ("/forbidden", errors.Forbidden, "403 Forbidden: go away"),
            ("/broken", errors.SystemError, "500 Internal Server Error: boom"),
        ]
        for path, kind, tail in cases:
            with pytest.raises(errors.DockyardError) as info:
                await download(base + path, tmp_path)
            assert type(info.value) is kind
            assert info.value.message == f"failed to GET {base}{path} with status {tail}"
        assert list(tmp_path.iterdir()) == []

    run(body)


def test_refused_connections_and_schemes(tmp_path: Path) -> None:
    port = _closed_port()

    async def body() -> None:
        url = f"http://127.0.0.1:{port}/x.tar"
        with pytest.raises(errors.SystemError) as info:
            async with open_remote(url):
                pass
        assert info.value.message == (
            f'Get "{url}": dial tcp 127.0.0.1:{port}: connect: connection refused'
        )
        with pytest.raises(errors.InvalidArgument) as bad:
            await download("ftp://127.0.0.1/x", tmp_path)
        assert bad.value.message == 'Get "ftp://127.0.0.1/x": unsupported protocol scheme "ftp"'
        with pytest.raises(errors.InvalidArgument):
            await download("http:///x", tmp_path)

    asyncio.run(body())


def test_streams_large_bodies_and_removes_partial_files(tmp_path: Path) -> None:
    messages: list[dict[str, Any]] = []

    async def progress(message: dict[str, Any]) -> None:
        messages.append(message)

    async def body(base: str) -> None:
        got = await download(f"{base}/big.bin", tmp_path, progress=progress, action="Importing")
        assert got.size == 4 << 20 == got.path.stat().st_size
        assert all(m.get("status") == "Importing" for m in messages[:-1])
        assert messages[-2]["progressDetail"] == {"current": 4 << 20, "total": 4 << 20}
        partial = tmp_path / "partial"
        partial.mkdir()
        with pytest.raises(errors.SystemError) as info:
            await download(f"{base}/truncated.bin", partial)
        assert info.value.message.startswith(f"failed to download {base}/truncated.bin: ")
        assert list(partial.iterdir()) == []

    run(body)
