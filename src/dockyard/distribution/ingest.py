"""Stream bytes from the event loop into the (synchronous) content store.

``ContentStore.ingest`` hashes, writes, fsyncs, checks digest and size, and renames into
place — or removes its temp file on any error. ``StreamIngest`` runs it in a worker thread
and feeds it chunk by chunk through a small bounded queue, so a blob is verified while it
streams and never sits whole in memory, and a slow disk slows the download (back-pressure)
instead of buffering it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io

from dockyard.content.store import ContentStore

__all__ = ["StreamIngest"]

_QUEUE_CHUNKS = 8


class _ReaderGone(Exception):
    """The ingest thread stopped reading (it failed); its own error tells why."""


class _Pipe(io.RawIOBase):
    """The thread's end reads what the loop's end puts; ``None`` is end of file, an
    exception is raised in the reader."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(_QUEUE_CHUNKS)
        self._pending = memoryview(b"")
        self._eof = False
        self.reader_gone = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if not self._pending:
            if self._eof:
                return 0
            item = asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop).result()
            if item is None:
                self._eof = True
                return 0
            if isinstance(item, BaseException):
                self._eof = True
                raise item
            self._pending = memoryview(item)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    # -- event loop side -------------------------------------------------------------------

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    def mark_reader_gone(self) -> None:
        self.reader_gone = True
        self._drain()  # unblock a writer waiting for room

    async def put(self, item: bytes | None) -> None:
        if self.reader_gone:
            raise _ReaderGone()
        await self._queue.put(item)
        if self.reader_gone:
            raise _ReaderGone()

    def fail(self, exc: BaseException) -> None:
        self._drain()
        self._queue.put_nowait(exc)


class StreamIngest:
    """One blob on its way into content: ``start``, ``write`` chunks, ``finish`` (returns
    the verified digest; ``InvalidArgument`` on a digest or size mismatch) or ``abort``."""

    def __init__(
        self,
        content: ContentStore,
        executor: concurrent.futures.Executor,
        expected: str,
        size: int | None,
    ) -> None:
        self._content = content
        self._executor = executor
        self._expected = expected
        self._size = size
        self._pipe: _Pipe | None = None
        self._future: asyncio.Future[str] | None = None

    def _run(self, pipe: _Pipe, loop: asyncio.AbstractEventLoop) -> str:
        try:
            return self._content.ingest(
                io.BufferedReader(pipe, 1 << 20),
                self._expected,
                self._size,  # type: ignore[arg-type]
            )
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(pipe.mark_reader_gone)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._pipe = _Pipe(loop)
        self._future = loop.run_in_executor(self._executor, self._run, self._pipe, loop)

    async def write(self, chunk: bytes) -> bool:
        """Hand over a chunk; False when the store stopped reading because it holds the
        blob already (a concurrent pull finished it). Raises the ingest's error."""
        assert self._pipe is not None and self._future is not None
        try:
            await self._pipe.put(chunk)
        except _ReaderGone:
            await self._future  # raises the ingest's own error, if it failed
            return False
        return True

    async def finish(self) -> str:
        assert self._pipe is not None and self._future is not None
        with contextlib.suppress(_ReaderGone):
            await self._pipe.put(None)
        return await self._future

    async def abort(self, exc: BaseException) -> None:
        """Stop the thread (it removes its temp file) and wait for it."""
        if self._pipe is None or self._future is None:
            return
        if not self._future.done():
            self._pipe.fail(exc if isinstance(exc, Exception) else ConnectionAbortedError())
        with contextlib.suppress(BaseException):
            await asyncio.shield(self._future)
