"""Copy bytes between a hijacked client connection and a conmon attach stream.

Output ends the relay: when conmon closes the stream (the process ended) the client is
done. A client's half-close only ends its stdin (closed in the container when the
container was created with StdinOnce, and always for exec); a full disconnect ends both.
"""

from __future__ import annotations

import asyncio
import contextlib

from dockyard.daemon.streams import Hijacked, frame
from dockyard.runtime import AttachStream

__all__ = ["relay_attach"]


async def relay_attach(
    conn: Hijacked,
    stream: AttachStream,
    *,
    tty: bool,
    stdin: bool,
    stdout: bool = True,
    stderr: bool = True,
    close_stdin_on_eof: bool = True,
) -> None:
    async def pump_output() -> None:
        while True:
            item = await stream.read()
            if item is None:
                return
            number, data = item
            if (number == 1 and not stdout) or (number == 2 and not stderr):
                continue
            conn.write(data if tty else frame(number, data))
            await conn.drain()
            if conn.closing:
                return

    async def pump_input() -> None:
        while True:
            data = await conn.read()
            if data is None:
                return  # the client went away entirely
            if data == b"":
                if stdin and close_stdin_on_eof:
                    stream.close_stdin()
                # Keep waiting: a later full close still ends the relay.
                while await conn.read() is not None:
                    pass
                return
            if stdin:
                await stream.write(data)

    output = asyncio.ensure_future(pump_output())
    inputs = asyncio.ensure_future(pump_input())
    try:
        done, _ = await asyncio.wait({output, inputs}, return_when=asyncio.FIRST_COMPLETED)
        if output not in done:
            # Client disconnected before the process ended.
            output.cancel()
    finally:
        inputs.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await output
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await inputs
        stream.close()
