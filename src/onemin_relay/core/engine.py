"""The chat core: a `CoreRequest` → 1min.ai chat calls → a `CoreResult` or a stream of `CoreEvent`s.

Every dialect (chat completions, Responses, Anthropic Messages, legacy completions) calls `complete` or
`open_stream`; this module does the I/O they share: the caller's key, the model's capability, uploading
attachments, the upstream calls (one per choice, plus any repair round-trips of the tool/JSON emulation),
usage and credits. What is done to the text itself lives in pure modules (`core/answer.py` and what it
uses).

Streaming: one producer task per choice reads its upstream stream, turns it into `CoreEvent`s and puts
them on a small bounded queue; `CoreStream.events` reads the queue. That gives, in one place: keep-alives
while upstream is silent, `n` > 1 streams interleaved, backpressure from a slow client, and cancellation:
`aclose` cancels the producers, and leaving `chat_stream` closes the upstream request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import Request

from onemin_relay.api.auth import caller
from onemin_relay.api.capabilities import require_capability
from onemin_relay.api.chat_media import all_or_nothing, resolve_attachments
from onemin_relay.api.common import relay
from onemin_relay.core.answer import AnswerJudge, Verdict, upstream_prompt
from onemin_relay.core.types import (
    ChoiceDone,
    ChoiceOut,
    CoreEvent,
    CoreRequest,
    CoreResult,
    KeepAlive,
    StreamFailure,
    StreamUsage,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from onemin_relay.errors import OpenAIError
from onemin_relay.observability import note_model, note_usage
from onemin_relay.translate.chat import (
    SEARCH_CONTEXT,
    answer_text,
    build_payload,
    media_parts,
    record_metadata,
    split_online,
)
from onemin_relay.translate.errors import openai_error_from_upstream
from onemin_relay.translate.tokens import (
    count_tokens,
    load_encoding,
    upstream_credits,
    upstream_token_counts,
)
from onemin_relay.upstream.catalogue import CHAT_FEATURE
from onemin_relay.upstream.errors import UpstreamError

if TYPE_CHECKING:
    from onemin_relay.app import RelayContext
    from onemin_relay.upstream.catalogue import ModelInfo

log = logging.getLogger("onemin_relay.chat")

_QUEUE_SIZE = 32
# Texts longer than this are tokenised on a worker thread, so the event loop never stalls on them.
_THREAD_TOKENISE_CHARS = 20_000


async def count_tokens_off_loop(text: str) -> int:
    await load_encoding()  # at once, unless a count is needed in the first moments after start-up
    if len(text) > _THREAD_TOKENISE_CHARS:
        return await anyio.to_thread.run_sync(count_tokens, text)
    return count_tokens(text)


@dataclass(frozen=True)
class _Prepared:
    """A request ready to send: who asks, the folded prompt and the upstream payload (without prompt)."""

    context: RelayContext
    api_key: str
    core: CoreRequest
    prompt: str
    payload: Mapping[str, Any]

    def payload_for(self, prompt: str) -> dict[str, Any]:
        body = dict(self.payload)
        body["promptObject"] = {**body["promptObject"], "prompt": prompt}
        return body


async def _chat_model(request: Request, core: CoreRequest) -> ModelInfo:
    """The model `core` names, checked to serve chat (404/400 otherwise); the tokeniser loaded if the
    answer may have to be cut at `max_tokens` (the cut is made on the loop, as the answer arrives)."""
    note_model(core.model)
    if core.token_limit is not None:
        await load_encoding()
    model_id, _ = split_online(core.model)
    return await require_capability(relay(request), model_id, CHAT_FEATURE, "chat completions")


async def _prepare(request: Request, core: CoreRequest) -> _Prepared:
    api_key = caller(request).upstream_key
    context = relay(request)
    model = await _chat_model(request, core)
    _, online = split_online(core.model)
    attachments = await resolve_attachments(
        request, context, api_key, model, media_parts(core.messages, core.param_prefix)
    )
    prompt = upstream_prompt(core, core.messages, attachments.file_names, context.settings)
    search = core.web_search or ("medium" if online else None)
    web_search = None
    if search is not None:
        sites, words = SEARCH_CONTEXT[search]
        web_search = {"webSearch": True, "numOfSite": sites, "maxWord": words}
    payload = build_payload(
        model.id, prompt, images=attachments.images, files=attachments.files, web_search=web_search
    )
    return _Prepared(context, api_key, core, prompt, payload)


async def count_prompt_tokens(request: Request, core: CoreRequest) -> int:
    """The `cl100k_base` tokens of the prompt `complete` would send for `core`, without calling 1min.ai.

    The key and the model are checked as for an answer, but nothing is uploaded, so a `file_id` part's
    marker lacks its file name (a few tokens)."""
    caller(request)
    await _chat_model(request, core)
    media_parts(core.messages, core.param_prefix)  # refuses what an answer would (audio input)
    return await count_tokens_off_loop(upstream_prompt(core, core.messages, {}, relay(request).settings))


def _upstream_failure(exc: UpstreamError) -> OpenAIError:
    return openai_error_from_upstream(exc)


@dataclass
class _Tally:
    """Usage and credits of one choice: its first call, and every repair call made after it."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    repair_prompt_tokens: int = 0
    credits: int = 0


async def _count_call(
    tally: _Tally, record: Mapping[str, Any] | None, prompt: str, text: str, *, repair: bool
) -> None:
    counts = upstream_token_counts(record_metadata(record))
    if counts is None:
        counts = await asyncio.gather(count_tokens_off_loop(prompt), count_tokens_off_loop(text))
    if repair:
        tally.repair_prompt_tokens += counts[0]
    else:
        tally.prompt_tokens = counts[0]
    tally.completion_tokens += counts[1]
    tally.credits += upstream_credits(record_metadata(record)) or 0


def _usage(tallies: list[_Tally]) -> Usage:
    """Like OpenAI with `n` > 1 the prompt counts once (every choice got the same one); repair prompts and
    every completion add up. Noted for the request's record too."""
    prompt = max(t.prompt_tokens for t in tallies) + sum(t.repair_prompt_tokens for t in tallies)
    usage = Usage(prompt, sum(t.completion_tokens for t in tallies))
    note_usage(usage.prompt_tokens, usage.completion_tokens)
    return usage


async def _repair(
    prepared: _Prepared, judge: AnswerJudge, tally: _Tally, verdict: Verdict
) -> tuple[Verdict, Mapping[str, Any] | None]:
    """Ask again while the answer is malformed and repair attempts remain; the last verdict and record."""
    upstream = prepared.context.upstream
    record: Mapping[str, Any] | None = None
    while verdict.repair_prompt is not None:
        prompt = verdict.repair_prompt
        try:
            record = await upstream.chat(prepared.api_key, prepared.payload_for(prompt))
        except UpstreamError as exc:
            raise _upstream_failure(exc) from None
        text = answer_text(dict(record))
        await _count_call(tally, record, prompt, text, repair=True)
        verdict = judge.judge_repair(text)
    return verdict, record


# --- whole answers -------------------------------------------------------------------------------


async def complete(request: Request, core: CoreRequest) -> CoreResult:
    """The whole answer: one upstream call per choice (plus repairs), run concurrently."""
    prepared = await _prepare(request, core)
    outcomes = await all_or_nothing([_complete_choice(prepared) for _ in range(core.choices)])
    tallies = [tally for _, tally, _ in outcomes]
    records = [record for _, _, record in outcomes if record is not None]
    record_id = records[-1].get("uuid") if records else None
    return CoreResult(
        tuple(choice for choice, _, _ in outcomes),
        _usage(tallies),
        sum(t.credits for t in tallies),
        record_id if isinstance(record_id, str) else None,
    )


async def _complete_choice(prepared: _Prepared) -> tuple[ChoiceOut, _Tally, Mapping[str, Any] | None]:
    try:
        record: Mapping[str, Any] | None = await prepared.context.upstream.chat(
            prepared.api_key, prepared.payload_for(prepared.prompt)
        )
    except UpstreamError as exc:
        raise _upstream_failure(exc) from None
    assert record is not None
    judge = AnswerJudge(prepared.core, prepared.prompt, prepared.context.settings)
    raw = answer_text(dict(record))
    if len(raw) > _THREAD_TOKENISE_CHARS:
        await anyio.to_thread.run_sync(judge.feed, raw)
    else:
        judge.feed(raw)
    attempt = judge.finish(record)
    tally = _Tally()
    await _count_call(tally, record, prepared.prompt, attempt.counted_text, repair=False)
    verdict, repaired = await _repair(prepared, judge, tally, judge.judge_first(attempt))
    return verdict.choice(), tally, repaired or record


# --- streams -------------------------------------------------------------------------------------

_END = object()  # a producer is done: its choice is finished and counted


@dataclass
class CoreStream:
    """One streamed answer, from the upstream calls being opened to the last event."""

    prepared: _Prepared
    want_usage: bool
    _queue: asyncio.Queue[tuple[int, object]] = field(default_factory=lambda: asyncio.Queue(_QUEUE_SIZE))
    _producers: list[asyncio.Task[None]] = field(default_factory=list)
    _early: list[tuple[int, object]] = field(default_factory=list)
    _tallies: list[_Tally] = field(default_factory=list)
    _slow_start: bool = False

    async def _open(self) -> None:
        """Start the upstream calls and wait for the first event (or the keep-alive interval).

        An upstream error that comes first is raised here, so the client gets a proper HTTP status."""
        choices = self.prepared.core.choices
        self._tallies = [_Tally() for _ in range(choices)]
        self._producers = [
            asyncio.create_task(self._produce(index), name=f"chat-stream-{index}") for index in range(choices)
        ]
        try:
            item = await self._next(self.prepared.context.settings.stream_keepalive_seconds)
        except BaseException:
            await self.aclose()
            raise
        if item is None:
            self._slow_start = True  # the stream opens with a keep-alive: the client has waited long enough
            return
        if isinstance(item[1], OpenAIError):
            await self.aclose()
            raise item[1]
        self._early.append(item)

    async def _next(self, keepalive: float) -> tuple[int, object] | None:
        """The producers' next item, or None when none came within `keepalive` seconds. Every event of
        every stream passes here: one already waiting is taken at once, and the wait itself is a timeout
        scope, not `asyncio.wait_for` (which wraps the wait in a new task: ~35 against ~20 µs an event)."""
        if not self._queue.empty():
            return self._queue.get_nowait()
        try:
            async with asyncio.timeout(keepalive):
                return await self._queue.get()
        except TimeoutError:
            return None

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

    async def events(self) -> AsyncIterator[CoreEvent]:
        keepalive = self.prepared.context.settings.stream_keepalive_seconds
        running = len(self._producers)
        try:
            if self._slow_start:
                yield KeepAlive()
            while running:
                if self._early:
                    _, item = self._early.pop(0)
                else:
                    waited = await self._next(keepalive)
                    if waited is None:
                        yield KeepAlive()
                        continue
                    _, item = waited
                if item is _END:
                    running -= 1
                elif isinstance(item, OpenAIError):
                    log.warning("chat stream failed upstream: %s", item.message)
                    yield StreamFailure(item)
                    return
                else:
                    assert isinstance(item, TextDelta | ToolCallStart | ToolCallDelta | ChoiceDone)
                    yield item
            if self.want_usage:
                yield StreamUsage(_usage(self._tallies), sum(t.credits for t in self._tallies))
        finally:
            await self.aclose()

    async def _produce(self, index: int) -> None:
        try:
            await self._run_choice(index)
        except UpstreamError as exc:
            await self._queue.put((index, _upstream_failure(exc)))
        except OpenAIError as exc:
            await self._queue.put((index, exc))
        except Exception as exc:  # handed to the reader, which answers it to the client
            log.error("chat stream broke", exc_info=exc)
            error = OpenAIError(500, "The relay hit an internal error while streaming; it has been logged.")
            await self._queue.put((index, error))
        else:
            await self._queue.put((index, _END))

    async def _emit(self, index: int, events: list[CoreEvent]) -> None:
        for event in events:
            await self._queue.put((index, event))

    async def _run_choice(self, index: int) -> None:
        prepared = self.prepared
        judge = AnswerJudge(prepared.core, prepared.prompt, prepared.context.settings, choice=index)
        record: Mapping[str, Any] | None = None
        started = False
        streamed = False  # upstream sent the answer as `content` events (not only in its final record)
        payload = prepared.payload_for(prepared.prompt)
        async with prepared.context.upstream.chat_stream(prepared.api_key, payload) as upstream:
            async for event in upstream:
                if event.kind == "error":
                    raise UpstreamError(200, "STREAM_ERROR", event.text or "the stream failed")
                if not started:
                    started = True
                    await self._queue.put((index, TextDelta(index, "")))  # the choice has started
                if event.kind == "content":
                    streamed = True
                    await self._emit(index, judge.feed(event.text))
                elif event.kind == "result":
                    record = event.record
                    if not streamed and event.record:
                        # A stream that only carried the final record still has an answer to give.
                        await self._emit(index, judge.feed(answer_text(event.record)))
                if judge.cut or event.kind == "done":
                    # A cut answer: leaving the block closes the upstream request so generation (and
                    # billing) can stop. Its usage is then counted locally.
                    break
        attempt = judge.finish(record)
        tally = self._tallies[index]
        await _count_call(tally, record, prepared.prompt, attempt.counted_text, repair=False)
        verdict = judge.judge_first(attempt)
        if verdict.repair_prompt is not None:
            verdict, _ = await _repair(prepared, judge, tally, verdict)
        await self._emit(index, judge.final_events(verdict))


async def open_stream(request: Request, core: CoreRequest, *, want_usage: bool = True) -> CoreStream:
    """Open the upstream stream(s); raises OpenAIError when upstream fails before its first event."""
    stream = CoreStream(await _prepare(request, core), want_usage)
    await stream._open()
    return stream
