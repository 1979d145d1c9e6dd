"""Streaming chat: upstream SSE events → OpenAI `chat.completion.chunk` events, as they arrive.

One producer task per choice reads its upstream stream into a small bounded queue; the response body reads
the queue. That gives, in one place: keep-alive comments while upstream is silent, `n` > 1 streams
interleaved, backpressure from a slow client, and cancellation — closing the body (client gone, or the
answer complete) cancels the producers, and leaving `chat_stream` closes the upstream request.

An upstream failure before the first upstream event is answered as an ordinary HTTP error; after the
response has started it becomes an SSE `data: {"error": …}` event, which the OpenAI SDKs raise on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from onemin_relay.errors import OpenAIError
from onemin_relay.observability import note_usage
from onemin_relay.translate.chat import (
    answer_text,
    chunk_object,
    finish_reason,
    new_completion_id,
    record_metadata,
    usage_chunk,
    usage_object,
)
from onemin_relay.translate.chat_wire import ChatCompletionRequest
from onemin_relay.translate.errors import openai_error_from_upstream
from onemin_relay.translate.output import OutputLimiter
from onemin_relay.translate.tokens import upstream_token_counts
from onemin_relay.upstream.client import StreamEvent
from onemin_relay.upstream.errors import UpstreamError

if TYPE_CHECKING:
    from onemin_relay.api.chat import TokenCounter
    from onemin_relay.app import RelayContext

log = logging.getLogger("onemin_relay.chat")

KEEPALIVE = b": keep-alive\n\n"
DONE = b"data: [DONE]\n\n"
_QUEUE_SIZE = 32
_END = object()  # a producer's upstream stream ended


@dataclass
class _Choice:
    limiter: OutputLimiter
    started: bool = False
    finished: bool = False
    ended: bool = False  # nothing more will come from upstream for this choice
    streamed: bool = False  # upstream sent the answer as `content` events (not only in its final record)
    record: Mapping[str, Any] | None = None


@dataclass
class ChatStream:
    """One streamed chat completion, from opening the upstream streams to `data: [DONE]`."""

    context: RelayContext
    api_key: str
    request: ChatCompletionRequest
    payload: dict[str, Any]
    prompt: str
    count_tokens: TokenCounter
    completion_id: str = field(default_factory=new_completion_id)
    created: int = field(default_factory=lambda: int(time.time()))
    _queue: asyncio.Queue[tuple[int, object]] = field(default_factory=lambda: asyncio.Queue(_QUEUE_SIZE))
    _producers: list[asyncio.Task[None]] = field(default_factory=list)
    _early: list[tuple[int, object]] = field(default_factory=list)
    _choices: list[_Choice] = field(default_factory=list)
    _slow_start: bool = False

    async def open(self) -> None:
        """Start the upstream calls and wait for the first event (or the keep-alive interval).

        An upstream error that comes first is raised here, so the client gets a proper HTTP status."""
        limit = self.request.token_limit
        self._choices = [
            _Choice(OutputLimiter(self.request.stop_sequences, limit)) for _ in range(self.request.choices)
        ]
        self._producers = [
            asyncio.create_task(self._produce(index), name=f"chat-stream-{index}")
            for index in range(self.request.choices)
        ]
        try:
            item = await asyncio.wait_for(self._queue.get(), self.context.settings.stream_keepalive_seconds)
        except TimeoutError:
            self._slow_start = True  # the body opens with a keep-alive: the client has waited long enough
            return
        except BaseException:
            await self.aclose()
            raise
        failure = _failure(item[1])
        if failure is not None:
            await self.aclose()
            raise failure
        self._early.append(item)

    async def aclose(self) -> None:
        """Cancel whatever still runs upstream (leaving `chat_stream` closes the upstream request)."""
        for task in self._producers:
            task.cancel()
        if self._producers:
            # Shielded, and `wait` rather than `await task`: while the response is being cancelled
            # (client gone), awaiting a task would cancel it again and again, cutting short its own
            # clean-up, i.e. the closing of the upstream connection.
            with anyio.CancelScope(shield=True):
                await asyncio.wait(self._producers)

    async def _produce(self, index: int) -> None:
        try:
            async with self.context.upstream.chat_stream(self.api_key, self.payload) as events:
                async for event in events:
                    await self._queue.put((index, event))
                    if event.kind in {"done", "error"}:
                        break
        except Exception as exc:  # handed to the reader, which answers it to the client
            await self._queue.put((index, exc))
        else:
            await self._queue.put((index, _END))

    async def body(self) -> AsyncGenerator[bytes, None]:
        keepalive = self.context.settings.stream_keepalive_seconds
        try:
            if self._slow_start:
                yield KEEPALIVE
            while not all(choice.ended for choice in self._choices):
                if self._early:
                    index, item = self._early.pop(0)
                else:
                    try:
                        index, item = await asyncio.wait_for(self._queue.get(), keepalive)
                    except TimeoutError:
                        yield KEEPALIVE
                        continue
                failure = _failure(item)
                if failure is not None and self._choices[index].finished:
                    # That choice's answer is already complete (cut by stop/max_tokens): only its usage
                    # record is lost, so the other choices carry on.
                    self._choices[index].ended = True
                    continue
                if failure is not None:
                    log.warning("chat stream failed upstream: %s", failure.message)
                    yield _sse(failure.body())
                    return
                for chunk in self._handle(index, item):
                    yield _sse(chunk)
            if self.request.include_usage:
                yield _sse(
                    usage_chunk(self.completion_id, self.created, self.request.model, await self._usage())
                )
            yield DONE
        finally:
            await self.aclose()

    def _handle(self, index: int, item: object) -> list[dict[str, Any]]:
        choice = self._choices[index]
        chunks: list[dict[str, Any]] = []
        if not choice.started:
            choice.started = True
            chunks.append(self._chunk(index, {"role": "assistant", "content": ""}))
        if isinstance(item, StreamEvent) and item.kind == "content":
            choice.streamed = True
            text = choice.limiter.feed(item.text)
            if text:
                chunks.append(self._chunk(index, {"content": text}))
        elif isinstance(item, StreamEvent) and item.kind == "result":
            choice.record = item.record
            if not choice.streamed and item.record:
                # A stream that only carried the final record still has an answer to give.
                text = choice.limiter.feed(answer_text(item.record))
                if text:
                    chunks.append(self._chunk(index, {"content": text}))
        else:  # done, or the upstream stream simply ended
            choice.ended = True
        if choice.limiter.done and not choice.finished:
            chunks += self._finish(index)
            # The answer is cut: close the upstream request so generation (and billing) can stop, and
            # end the client's stream now. Usage for this choice is then counted locally.
            self._producers[index].cancel()
            choice.ended = True
        elif choice.ended and not choice.finished:
            text = choice.limiter.finish()
            if text:
                chunks.append(self._chunk(index, {"content": text}))
            chunks += self._finish(index)
        return chunks

    def _finish(self, index: int) -> list[dict[str, Any]]:
        choice = self._choices[index]
        choice.finished = True
        reason = finish_reason(choice.limiter.cut, choice.record)
        return [self._chunk(index, {}, reason)]

    def _chunk(self, index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return chunk_object(
            self.completion_id,
            self.created,
            self.request.model,
            index,
            delta,
            finish,
            include_usage=self.request.include_usage,
        )

    async def _usage(self) -> dict[str, int]:
        counted: list[tuple[int, int]] = []
        local_prompt: int | None = None
        for choice in self._choices:
            counts = upstream_token_counts(record_metadata(choice.record))
            if counts is None:
                if local_prompt is None:
                    local_prompt = await self.count_tokens(self.prompt)
                counts = (local_prompt, await self.count_tokens(choice.limiter.text))
            counted.append((counts[0], counts[1]))
        usage = usage_object(counted)
        note_usage(usage["prompt_tokens"], usage["completion_tokens"])
        return usage


def _failure(item: object) -> OpenAIError | None:
    """The OpenAI error for a queue item that is a failure (an upstream `error` event or an exception)."""
    if isinstance(item, StreamEvent) and item.kind == "error":
        item = UpstreamError(200, "STREAM_ERROR", item.text or "the stream failed")
    if isinstance(item, UpstreamError):
        return openai_error_from_upstream(item)
    if isinstance(item, Exception):
        log.error("chat stream broke", exc_info=item)
        return OpenAIError(500, "The relay hit an internal error while streaming; it has been logged.")
    return None


def _sse(data: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n\n"


class EventStreamResponse(StreamingResponse):
    """`text/event-stream` that always releases the stream's upstream calls when it ends, however it ends."""

    def __init__(self, stream: ChatStream) -> None:
        self._body = stream.body()
        super().__init__(
            self._body,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._body.aclose()
            await self.stream.aclose()
