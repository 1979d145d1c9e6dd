"""Answers that come before the request body was read (401, an early 413 on Content-Length, a 400) reach
clients that write their whole body before reading.

A server that answers and closes with unread bytes in its socket makes the kernel send a TCP reset, and
such a client then sees "connection reset" instead of the answer. So before an answer starts while the
body is still arriving, the rest is read and dropped — bounded, so a huge or endless body cannot hold the
connection: at most `DRAIN_BYTES` or `DRAIN_SECONDS`, after which the answer goes out anyway (and the
client may still see the reset). It must happen before the answer: once the answer is complete, the
server no longer hands the application any body. The request layer (`edge.py`) tracks what was read
(`ends_body`) and calls `drain` as the answer starts.
"""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive

DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 2.0


def body_expected(expect: bytes | None) -> bool:
    """Whether a body may still be arriving when the request starts. A client that asked to be told
    (`Expect: 100-continue`) sends nothing before it is, so an early answer leaves nothing unread."""
    return expect is None or expect.lower() != b"100-continue"


def ends_body(message: Message) -> bool:
    """Whether `message` is the last body message (or a disconnect): nothing is unread after it."""
    return message["type"] == "http.disconnect" or not message.get("more_body", False)


async def drain(receive: Receive) -> None:
    """Read and drop the rest of the body, bounded by `DRAIN_BYTES` and `DRAIN_SECONDS`."""
    drained = 0
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            while drained <= DRAIN_BYTES:
                message = await receive()
                drained += len(message.get("body", b""))
                if ends_body(message):
                    return
    except TimeoutError:
        return
