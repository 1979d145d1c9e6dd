"""`POST /v1/chat/completions` over 1min.ai's `POST /api/chat-with-ai` (JSON, or SSE when streaming)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from onemin_relay.api.auth import caller_key
from onemin_relay.api.capabilities import require_capability
from onemin_relay.api.chat_media import all_or_nothing, resolve_attachments
from onemin_relay.api.chat_stream import ChatStream, EventStreamResponse
from onemin_relay.api.common import read_json, relay
from onemin_relay.observability import note_model, note_usage
from onemin_relay.translate.chat import (
    ChoiceResult,
    answer_text,
    build_payload,
    build_prompt,
    completion_object,
    finish_reason,
    media_parts,
    new_completion_id,
    record_metadata,
    split_online,
    usage_object,
    web_search_settings,
)
from onemin_relay.translate.chat_wire import ChatCompletionRequest, parse_chat_request
from onemin_relay.translate.output import limit_text
from onemin_relay.translate.tokens import (
    count_tokens,
    load_encoding,
    upstream_credits,
    upstream_token_counts,
)
from onemin_relay.upstream.catalogue import CHAT_FEATURE

TokenCounter = Callable[[str], Awaitable[int]]

# Texts longer than this are tokenised on a worker thread, so the event loop never stalls on them.
_THREAD_TOKENISE_CHARS = 20_000


async def count_tokens_off_loop(text: str) -> int:
    if len(text) > _THREAD_TOKENISE_CHARS:
        return await anyio.to_thread.run_sync(count_tokens, text)
    return count_tokens(text)


async def create_chat_completion(request: Request) -> Response:
    api_key = caller_key(request)
    context = relay(request)
    chat = parse_chat_request(await read_json(request))
    note_model(chat.model)
    await load_encoding()  # answers are cut and counted with it
    model_id, online = split_online(chat.model)
    model = await require_capability(context, model_id, CHAT_FEATURE, "chat completions")
    attachments = await resolve_attachments(request, context, api_key, model, media_parts(chat.messages))
    prompt = build_prompt(chat.messages, attachments.file_names)
    payload = build_payload(
        model.id,
        prompt,
        images=attachments.images,
        files=attachments.files,
        web_search=web_search_settings(chat, online),
    )
    if chat.stream:
        stream = ChatStream(context, api_key, chat, payload, prompt, count_tokens_off_loop)
        await stream.open()
        return EventStreamResponse(stream)
    return await _complete(request, api_key, chat, payload, prompt)


async def _complete(
    request: Request, api_key: str, chat: ChatCompletionRequest, payload: dict[str, Any], prompt: str
) -> Response:
    upstream = relay(request).upstream
    records = await all_or_nothing([upstream.chat(api_key, payload) for _ in range(chat.choices)])
    choices: list[ChoiceResult] = []
    counted: list[tuple[int, int]] = []
    credits = 0
    for record in records:
        answer = answer_text(record)
        if chat.token_limit is not None and len(answer) > _THREAD_TOKENISE_CHARS:
            text, cut = await anyio.to_thread.run_sync(
                limit_text, answer, chat.stop_sequences, chat.token_limit
            )
        else:
            text, cut = limit_text(answer, chat.stop_sequences, chat.token_limit)
        choices.append(ChoiceResult(text, finish_reason(cut, record)))
        counts = upstream_token_counts(record_metadata(record))
        if counts is None:
            counts = await asyncio.gather(count_tokens_off_loop(prompt), count_tokens_off_loop(text))
        counted.append((counts[0], counts[1]))
        credits += upstream_credits(record_metadata(record)) or 0
    usage = usage_object(counted)
    note_usage(usage["prompt_tokens"], usage["completion_tokens"])
    body = completion_object(new_completion_id(records[0]), int(time.time()), chat.model, choices, usage)
    return JSONResponse(body, headers={"x-onemin-credits": str(credits)})


routes: list[BaseRoute] = [Route("/v1/chat/completions", create_chat_completion, methods=["POST"])]
