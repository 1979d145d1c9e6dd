"""A client that hangs up before its answer starts cancels the work being done for it.

A non-streaming call waits for 1min.ai's whole answer before it sends anything; without this, a client that
gives up (a timeout, a closed tab) leaves its upstream call running until upstream answers or
`UPSTREAM_TIMEOUT`, holding a pooled connection and spending credits for nobody. Once the whole request body
has been read, this layer listens on `receive()` for `http.disconnect`; if it comes before the response
starts, the route is cancelled (which closes its upstream connection) and the access line says 499, "client
closed request". After the response starts, disconnects are the route's own business (streams watch for them).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onemin_relay.observability import current_record

CLIENT_CLOSED_REQUEST = 499  # nginx's status for it: only ever logged, the client is gone


class CancelOnHangUpMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = asyncio.current_task()
        assert route is not None
        listener: asyncio.Task[None] | None = None
        response_started = route_done = hung_up = False

        async def cancel_on_disconnect() -> None:
            nonlocal hung_up
            # Once the body has been read nothing but a disconnect can come (the server also answers
            # `http.disconnect` once the response is complete), so a plain wait is right.
            if (await receive())["type"] == "http.disconnect" and not (response_started or route_done):
                hung_up = True
                current_record().status = CLIENT_CLOSED_REQUEST
                route.cancel()

        async def body_then_listen() -> Message:
            nonlocal listener
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False) and listener is None:
                listener = asyncio.create_task(cancel_on_disconnect(), name="hang-up-listener")
            return message

        async def send_noting_start(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, body_then_listen, send_noting_start)
        except asyncio.CancelledError:
            if not hung_up:
                raise
            route.uncancel()  # the cancellation was ours: the request ends here, quietly
        finally:
            route_done = True
            if listener is not None:
                listener.cancel()
