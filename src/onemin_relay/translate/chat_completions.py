"""The chat-completions dialect, as pure functions: an OpenAI `ChatCompletionRequest` → a `CoreRequest`,
and what the core answers → `chat.completion` / `chat.completion.chunk` objects."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from onemin_relay.core.types import ChoiceOut, CoreRequest, FinishReason, ToolCallOut, Usage
from onemin_relay.translate.chat_wire import ChatCompletionRequest


def core_request(chat: ChatCompletionRequest) -> CoreRequest:
    search = None
    if chat.web_search_options is not None:
        search = chat.web_search_options.search_context_size or "medium"
    return CoreRequest(
        model=chat.model,
        messages=chat.messages,
        stop=chat.stop_sequences,
        token_limit=chat.token_limit,
        choices=chat.choices,
        web_search=search,
    )


def new_completion_id(record_id: str | None = None) -> str:
    suffix = record_id.replace("-", "") if record_id else secrets.token_hex(12)
    return f"chatcmpl-{suffix}"


def usage_object(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def wire_finish_reason(reason: FinishReason, *, legacy_functions: bool = False) -> str:
    """A call made through the legacy `functions` ends with `function_call`, as it did on OpenAI."""
    return "function_call" if legacy_functions and reason == "tool_calls" else reason


def _tool_calls(calls: tuple[ToolCallOut, ...]) -> list[dict[str, Any]]:
    return [
        {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
        for call in calls
    ]


def message_object(choice: ChoiceOut, *, legacy_functions: bool = False) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": choice.text,
        "refusal": None,
        "annotations": [],
    }
    if choice.tool_calls and legacy_functions:
        first = choice.tool_calls[0]
        message["function_call"] = {"name": first.name, "arguments": first.arguments}
    elif choice.tool_calls:
        message["tool_calls"] = _tool_calls(choice.tool_calls)
    return message


def completion_object(
    completion_id: str,
    created: int,
    model: str,
    choices: tuple[ChoiceOut, ...],
    usage: Usage,
    *,
    legacy_functions: bool = False,
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": index,
                "message": message_object(choice, legacy_functions=legacy_functions),
                "logprobs": None,
                "finish_reason": wire_finish_reason(choice.finish_reason, legacy_functions=legacy_functions),
            }
            for index, choice in enumerate(choices)
        ],
        "usage": usage_object(usage),
    }


def chunk_object(
    completion_id: str,
    created: int,
    model: str,
    index: int,
    delta: Mapping[str, Any],
    finish: str | None = None,
    *,
    include_usage: bool = False,
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": index, "delta": dict(delta), "logprobs": None, "finish_reason": finish}],
    }
    if include_usage:
        chunk["usage"] = None
    return chunk


def usage_chunk(completion_id: str, created: int, model: str, usage: Usage) -> dict[str, Any]:
    """The last chunk when `stream_options.include_usage` is set: no choices, the usage of the request."""
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage_object(usage),
    }
