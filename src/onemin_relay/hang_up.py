"""A client that hangs up before its answer is complete cancels the work being done for it.

A non-streaming call waits for 1min.ai's whole answer before it sends anything; without this, a client that
gives up (a timeout, a closed tab) leaves its upstream call running until upstream answers or
`UPSTREAM_TIMEOUT`, holding a pooled connection and spending credits for nobody. Once the whole request body
has been read, a `HangUpWatch` listens on `receive()` for `http.disconnect`; if it comes before the response
is complete, the request's task is cancelled (which closes its upstream connection). Before the response
started, the access line says 499, "client closed request"; a stream cut short keeps its status. The request
layer (`edge.py`) drives it, and an SSE answer (`api/event_stream.py`) relies on it instead of listening for
the disconnect itself (`watching`).
"""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Scope

from onemin_relay.observability import RequestRecord

CLIENT_CLOSED_REQUEST = 499  # nginx's status for it: only ever logged, the client is gone
_SCOPE_KEY = "onemin_relay.hang_up"


class HangUpWatch:
    """One request's watch. Made in the request's task (`watch(scope)`); `body_read` once the route has the
    whole body, `response_started` when the answer starts, `response_complete` when its last part leaves,
    `close` when the request is over. `hung_up` tells the request layer that a cancellation was this
    watch's doing (the request then ends quietly)."""

    __slots__ = ("_done", "_listener", "_record", "_task", "hung_up", "response_complete", "response_started")

    def __init__(self, record: RequestRecord) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._record = record
        self._listener: asyncio.Task[None] | None = None
        self._done = False
        self.response_started = False
        self.response_complete = False
        self.hung_up = False

    def body_read(self, receive: Receive) -> None:
        """The route has read the last body message: from now on only a disconnect can come."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._cancel_on_disconnect(receive), name="hang-up-listener")

    async def _cancel_on_disconnect(self, receive: Receive) -> None:
        # Once the body has been read nothing but a disconnect can come (the server also answers
        # `http.disconnect` once the response is complete), so a plain wait is right.
        if (await receive())["type"] == "http.disconnect" and not (self.response_complete or self._done):
            self.hung_up = True
            if not self.response_started:
                self._record.status = CLIENT_CLOSED_REQUEST
            self._task.cancel()

    @property
    def listening(self) -> bool:
        """Whether it listens for a disconnect now: from the whole body read to the request's end."""
        return self._listener is not None and not self._done

    def uncancel(self) -> None:
        """Undo this watch's cancellation of the request's task, once the request layer has caught it."""
        self._task.uncancel()

    def close(self) -> None:
        self._done = True
        if self._listener is not None:
            self._listener.cancel()


def watch(scope: Scope, record: RequestRecord) -> HangUpWatch:
    """A new watch for the request of `scope`, which `watching` finds there."""
    scope[_SCOPE_KEY] = hang_up = HangUpWatch(record)
    return hang_up


def watching(scope: Scope) -> bool:
    """Whether a watch is listening for this request's disconnect (it has read its whole body)."""
    hang_up = scope.get(_SCOPE_KEY)
    return isinstance(hang_up, HangUpWatch) and hang_up.listening
