"""Answers that come before the request body was read (401, an early 413 on Content-Length, a 400) reach
clients that write their whole body before reading.

A server that answers and closes with unread bytes in its socket makes the kernel send a TCP reset, and
such a client then sees "connection reset" instead of the answer. So before an answer starts while the
body is still arriving, the rest is read and dropped — bounded, so a huge or endless body cannot hold the
connection: at most `DRAIN_BYTES` or `DRAIN_SECONDS`, after which the answer goes out anyway (and the
client may still see the reset). It must happen before the answer: once the answer is complete, the
server no longer hands the application any body.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 2.0


class BodyDrainMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Until the last body message (or a disconnect) has been seen. A client that asked to be told
        # (`Expect: 100-continue`) sends nothing before it is, so an early answer leaves nothing unread.
        unread = (b"expect", b"100-continue") not in [
            (name, value.lower()) for name, value in scope.get("headers", [])
        ]

        async def tracked_receive() -> Message:
            nonlocal unread
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                unread = False
            return message

        async def draining_send(message: Message) -> None:
            nonlocal unread
            if message["type"] == "http.response.start" and unread:
                await _drain(tracked_receive)
                unread = False
            await send(message)

        await self.app(scope, tracked_receive, draining_send)


async def _drain(receive: Receive) -> None:
    drained = 0
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            while drained <= DRAIN_BYTES:
                message = await receive()
                drained += len(message.get("body", b""))
                if message["type"] == "http.disconnect" or not message.get("more_body", False):
                    return
    except TimeoutError:
        return
