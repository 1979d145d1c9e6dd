"""`POST /v1/completions`: OpenAI's legacy text completions over the chat core (JSON, or SSE when streaming).

Each prompt is one core request (`n` choices each), run concurrently; a batched stream interleaves the
prompts' streams as their events arrive. Errors are OpenAI's, as on chat completions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from onemin_relay.api.auth import caller
from onemin_relay.api.chat_media import all_or_nothing
from onemin_relay.api.common import read_json
from onemin_relay.api.event_stream import KEEPALIVE, EventStreamResponse, sse_data
from onemin_relay.core.engine import CoreStream, complete, count_prompt_tokens, open_stream
from onemin_relay.core.types import (
    ChoiceDone,
    ChoiceOut,
    CoreEvent,
    CoreRequest,
    CoreResult,
    KeepAlive,
    StreamFailure,
    StreamUsage,
    Usage,
)
from onemin_relay.errors import OpenAIError
from onemin_relay.fastjson import JSONResponse
from onemin_relay.translate.completions import (
    CompletionRequest,
    CompletionStream,
    completion_object,
    core_requests,
    parse_completion_request,
)

DONE = b"data: [DONE]\n\n"


async def create_completion(request: Request) -> Response:
    caller(request)  # a missing key is answered before anything is read
    body = parse_completion_request(await read_json(request))
    cores = core_requests(body)
    created = int(time.time())
    if body.token_limit == 0:  # nothing to generate (OpenAI allows it, with `echo`): no upstream call
        results = await all_or_nothing([_nothing(request, core) for core in cores])
        if body.stream:
            return EventStreamResponse(_replayed(body, created, results), _nothing_to_close)
        return JSONResponse(completion_object(body, results, created))
    if body.stream:
        streams = await _open_all(request, cores, want_usage=body.include_usage)

        async def close() -> None:
            await asyncio.gather(*(stream.aclose() for stream in streams))

        return EventStreamResponse(_chunks(body, created, _merged(streams)), close)
    results = await all_or_nothing([complete(request, core) for core in cores])
    credits = sum(result.credits for result in results)
    return JSONResponse(completion_object(body, results, created), headers={"x-onemin-credits": str(credits)})


async def _nothing(request: Request, core: CoreRequest) -> CoreResult:
    """The answer to `max_tokens: 0`: empty choices cut by the limit, the prompt counted locally."""
    prompt_tokens = await count_prompt_tokens(request, core)
    empty = ChoiceOut("", (), "length")
    return CoreResult((empty,) * core.choices, Usage(prompt_tokens, 0), 0)


async def _nothing_to_close() -> None:
    return None


async def _replayed(
    body: CompletionRequest, created: int, results: Sequence[CoreResult]
) -> AsyncIterator[bytes]:
    async def events() -> AsyncIterator[tuple[int, CoreEvent]]:
        for index, result in enumerate(results):
            for choice, out in enumerate(result.choices):
                yield index, ChoiceDone(choice, out.finish_reason)
            yield index, StreamUsage(result.usage, result.credits)

    async for chunk in _chunks(body, created, events()):
        yield chunk


async def _open_all(request: Request, cores: Sequence[CoreRequest], *, want_usage: bool) -> list[CoreStream]:
    """Open every prompt's stream concurrently; if one fails, close those that opened and raise its error."""
    opened = await asyncio.gather(
        *(open_stream(request, core, want_usage=want_usage) for core in cores), return_exceptions=True
    )
    streams = [item for item in opened if isinstance(item, CoreStream)]
    failure = next((item for item in opened if isinstance(item, BaseException)), None)
    if failure is not None:
        with anyio.CancelScope(shield=True):
            await asyncio.gather(*(stream.aclose() for stream in streams))
        raise failure
    return streams


async def _merged(streams: Sequence[CoreStream]) -> AsyncIterator[tuple[int, CoreEvent]]:
    """Every stream's events, tagged with its prompt's index, in the order they arrive."""
    if len(streams) == 1:
        async for event in streams[0].events():
            yield 0, event
        return
    queue: asyncio.Queue[tuple[int, CoreEvent | None]] = asyncio.Queue(maxsize=32)

    async def pump(index: int, stream: CoreStream) -> None:
        try:
            async for event in stream.events():
                await queue.put((index, event))
        except Exception:  # the engine reports failures as events; anything else is a bug, answered as one
            error = OpenAIError(500, "The relay hit an internal error while streaming; it has been logged.")
            await queue.put((index, StreamFailure(error)))
        await queue.put((index, None))

    tasks = [asyncio.create_task(pump(index, stream)) for index, stream in enumerate(streams)]
    try:
        running = len(tasks)
        while running:
            index, item = await queue.get()
            if item is None:
                running -= 1
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait(tasks)


async def _chunks(
    body: CompletionRequest, created: int, events: AsyncIterator[tuple[int, CoreEvent]]
) -> AsyncIterator[bytes]:
    renderer = CompletionStream(body, created)
    for chunk in renderer.start():
        yield sse_data(chunk)
    async for index, event in events:
        if isinstance(event, KeepAlive):
            yield KEEPALIVE
        elif isinstance(event, StreamFailure):
            yield sse_data(event.error.body())
            return
        else:
            for chunk in renderer.feed(index, event):
                yield sse_data(chunk)
    if body.include_usage:
        yield sse_data(renderer.usage_chunk())
    yield DONE


routes: list[BaseRoute] = [Route("/v1/completions", create_completion, methods=["POST"])]
