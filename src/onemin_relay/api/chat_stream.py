"""Streaming chat completions: the core's events → OpenAI `chat.completion.chunk` SSE events.

An upstream failure before the first upstream event is answered as an ordinary HTTP error (`open_stream`
raises it); after the response has started it becomes an SSE `data: {"error": …}` event, which the OpenAI
SDKs raise on.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from onemin_relay.api.event_stream import KEEPALIVE, sse_data
from onemin_relay.core.engine import CoreStream
from onemin_relay.core.types import (
    ChoiceDone,
    KeepAlive,
    StreamFailure,
    StreamUsage,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
)
from onemin_relay.fastjson import dumps
from onemin_relay.translate.chat_completions import (
    chunk_object,
    new_completion_id,
    usage_chunk,
    wire_finish_reason,
)
from onemin_relay.translate.chat_wire import ChatCompletionRequest

DONE = b"data: [DONE]\n\n"
_MARK = "\x00text\x00"  # stands for the text in a chunk rendered once; its JSON is `"\u0000text\u0000"`


def _around_text(rendered: bytes) -> tuple[bytes, bytes]:
    """A text chunk, rendered once per choice with `_MARK` for its text, split around it: the text comes
    last in the chunk (`…"delta":{"content":<text>},"logprobs":null,…`), so at the mark's last occurrence
    (a model name could hold it too). Each text delta is then `head + dumps(text) + tail`: the same bytes
    as rendering the whole chunk, without building and encoding its dict for every few characters."""
    head, mark, tail = rendered.rpartition(dumps(_MARK))
    assert mark
    return head, tail


async def chat_chunks(chat: ChatCompletionRequest, stream: CoreStream) -> AsyncIterator[bytes]:
    completion_id = new_completion_id()
    created = int(time.time())
    legacy = chat.uses_legacy_functions
    started: dict[int, tuple[bytes, bytes]] = {}  # per started choice: its text chunk around the text

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse_data(
            chunk_object(
                completion_id, created, chat.model, index, delta, finish, include_usage=chat.include_usage
            )
        )

    async for event in stream.events():
        if isinstance(event, KeepAlive):
            yield KEEPALIVE
            continue
        if isinstance(event, StreamFailure):
            yield sse_data(event.error.body())
            return
        if isinstance(event, StreamUsage):
            yield sse_data(usage_chunk(completion_id, created, chat.model, event.usage))
            continue
        if event.choice not in started:
            started[event.choice] = _around_text(chunk(event.choice, {"content": _MARK}))
            yield chunk(event.choice, {"role": "assistant", "content": ""})
        if isinstance(event, TextDelta):
            if event.text:
                head, tail = started[event.choice]
                yield head + dumps(event.text) + tail
        elif isinstance(event, ToolCallStart):
            if legacy:
                yield chunk(event.choice, {"function_call": {"name": event.name, "arguments": ""}})
            else:
                call = {"id": event.id, "type": "function", "function": {"name": event.name, "arguments": ""}}
                yield chunk(event.choice, {"tool_calls": [{"index": event.call, **call}]})
        elif isinstance(event, ToolCallDelta):
            if legacy:
                yield chunk(event.choice, {"function_call": {"arguments": event.arguments}})
            else:
                arguments = {"index": event.call, "function": {"arguments": event.arguments}}
                yield chunk(event.choice, {"tool_calls": [arguments]})
        elif isinstance(event, ChoiceDone):
            yield chunk(event.choice, {}, wire_finish_reason(event.finish_reason, legacy_functions=legacy))
    yield DONE
