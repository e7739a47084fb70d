"""What pulls and pushes share: the stores, a worker pool, limits, and in-flight work."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dockyard.content.store import ContentStore
from dockyard.distribution.client import RetryPolicy
from dockyard.distribution.metadata import BlobMetadata
from dockyard.distribution.progress import Progress
from dockyard.images.service import ImageService

__all__ = ["Context", "SharedDownload", "in_thread"]

T = TypeVar("T")


async def in_thread(
    executor: concurrent.futures.Executor, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """Run blocking ``fn`` in ``executor``. If the caller is cancelled, wait for the thread
    to finish before re-raising, so clean-up never races work still in progress."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(executor, functools.partial(fn, *args, **kwargs))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await future
        raise


@dataclass
class SharedDownload:
    """A blob download that concurrent pulls of the same blob wait on together; progress
    goes to every waiting pull's stream."""

    task: asyncio.Task[None] | None = None
    reporters: list[Progress] = field(default_factory=list)

    def report(self, message: dict[str, Any]) -> None:
        for report in list(self.reporters):
            report(message)


@dataclass
class Context:
    images: ImageService
    content: ContentStore
    metadata: BlobMetadata
    executor: concurrent.futures.ThreadPoolExecutor
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_downloads: int = 3
    max_uploads: int = 5
    max_unpacks: int = 2
    downloads: dict[str, SharedDownload] = field(default_factory=dict)
    leases: Counter[str] = field(default_factory=Counter)
