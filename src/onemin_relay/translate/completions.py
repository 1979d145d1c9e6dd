"""OpenAI's legacy text completions (`POST /v1/completions`) ⇄ the chat core, as pure functions.

Each prompt of the request becomes one `CoreRequest` (a user turn with the prompt; with `suffix`, an
instruction to write only what goes between the prompt and the suffix), asking for `n` choices; the
answers come back as `text_completion` objects (or chunks), choice `i` of prompt `p` at index `p * n + i`,
as OpenAI orders them. Details in docs/chat.md ("Legacy completions").
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from onemin_relay.core.types import (
    ChoiceDone,
    CoreEvent,
    CoreRequest,
    CoreResult,
    StreamUsage,
    TextDelta,
    Usage,
)
from onemin_relay.errors import invalid_request, validate
from onemin_relay.translate import chat_wire as wire

# Every prompt × choice is one billed upstream call: bound what one request can fan out to.
MAX_UPSTREAM_CALLS = 16
# OpenAI's default for this API (chat completions have none).
DEFAULT_MAX_TOKENS = 16
FILL_MARKER = "<FILL_HERE>"
FILL_INSTRUCTION = (
    f"Fill in the middle. Reply with exactly the text that belongs where {FILL_MARKER} stands in the next "
    "message, so that it joins the text before and after it: no explanation, no quotes, and none of the "
    "surrounding text."
)
_FINISH_REASONS = frozenset({"stop", "length", "content_filter"})


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    model: str = Field(min_length=1, max_length=256)
    prompt: str | list[Any]
    suffix: str | None = None
    max_tokens: int | None = Field(DEFAULT_MAX_TOKENS, ge=0)
    stop: wire.Stop | None = None
    n: int | None = Field(None, ge=1, le=wire.MAX_CHOICES)
    echo: bool | None = False
    stream: bool | None = False
    stream_options: wire.StreamOptions | None = None
    logprobs: int | None = Field(None, ge=0, le=5)
    # Accepted and ignored: 1min.ai has no such settings (docs/chat.md lists them).
    best_of: int | None = Field(None, ge=0, le=20)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    seed: int | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    @property
    def choices(self) -> int:
        return self.n or 1

    @property
    def token_limit(self) -> int:
        return DEFAULT_MAX_TOKENS if self.max_tokens is None else self.max_tokens

    @property
    def stop_sequences(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else self.stop or []
        return tuple(stop for stop in stops if stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def parse_completion_request(data: object) -> CompletionRequest:
    """Validate a request body; the first problem becomes a 400 naming its param (e.g. `prompt.1`)."""
    request = validate(CompletionRequest, data)
    if request.logprobs:
        raise invalid_request(
            "Log probabilities are not available through 1min.ai; leave 'logprobs' unset.",
            param="logprobs",
            code="unsupported_parameter",
        )
    prompts = request.prompts
    if not prompts:
        raise invalid_request("'prompt' must not be an empty array.", param="prompt")
    for index, prompt in enumerate(prompts):
        param = "prompt" if isinstance(request.prompt, str) else f"prompt.{index}"
        if isinstance(prompt, int | list):
            raise invalid_request(
                "Prompts as token ids are not supported: 1min.ai models take text, so send the prompt as a "
                "string (or an array of strings).",
                param="prompt",
                code="unsupported_value",
            )
        if not isinstance(prompt, str):
            raise invalid_request(f"Invalid value at '{param}': expected a string.", param=param)
        if not prompt and request.suffix is None:
            raise invalid_request("The prompt is empty: give the text to complete.", param=param)
    if len(prompts) * request.choices > MAX_UPSTREAM_CALLS:
        raise invalid_request(
            f"One request may ask for at most {MAX_UPSTREAM_CALLS} completions (prompts × n); "
            f"this one asks for {len(prompts) * request.choices}.",
            param="prompt",
        )
    return request


def core_requests(request: CompletionRequest) -> list[CoreRequest]:
    """One core request per prompt, each asking for `n` choices."""
    return [
        CoreRequest(
            model=request.model,
            messages=prompt_messages(prompt, request.suffix),
            stop=request.stop_sequences,
            token_limit=request.token_limit,
            choices=request.choices,
            param_prefix="prompt",
        )
        for prompt in request.prompts
    ]


def prompt_messages(prompt: str, suffix: str | None) -> list[wire.Message]:
    """The prompt as the chat turn 1min.ai answers; a `suffix` turns it into a fill-in-the-middle task."""
    if suffix is None:
        return [wire.Message(role="user", content=prompt)]
    return [
        wire.Message(role="system", content=FILL_INSTRUCTION),
        wire.Message(role="user", content=f"{prompt}{FILL_MARKER}{suffix}"),
    ]


# --- response side -----------------------------------------------------------------------------


def new_completion_id(record_id: str | None = None) -> str:
    suffix = record_id.replace("-", "") if record_id else secrets.token_hex(12)
    return f"cmpl-{suffix}"


def finish_reason(reason: str) -> str:
    return reason if reason in _FINISH_REASONS else "stop"


def _choice(index: int, text: str, finish: str | None) -> dict[str, Any]:
    return {"text": text, "index": index, "logprobs": None, "finish_reason": finish}


def usage_object(usages: Sequence[Usage]) -> dict[str, int]:
    """The request's usage: every prompt's own (each counts its prompt once, its choices each)."""
    prompt_tokens = sum(usage.prompt_tokens for usage in usages)
    completion_tokens = sum(usage.completion_tokens for usage in usages)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion_object(
    request: CompletionRequest, results: Sequence[CoreResult], created: int
) -> dict[str, Any]:
    """The `text_completion` for one core result per prompt (in prompt order)."""
    choices = []
    for number, (prompt, result) in enumerate(zip(request.prompts, results, strict=True)):
        for choice_index, choice in enumerate(result.choices):
            text = (prompt if request.echo else "") + (choice.text or "")
            index = number * request.choices + choice_index
            choices.append(_choice(index, text, finish_reason(choice.finish_reason)))
    return {
        "id": new_completion_id(results[0].record_id if results else None),
        "object": "text_completion",
        "created": created,
        "model": request.model,
        "choices": choices,
        "usage": usage_object([result.usage for result in results]),
    }


@dataclass
class CompletionStream:
    """Core events of each prompt's stream → `text_completion` chunks: the prompt first when `echo` is set,
    then text deltas, then one chunk with the finish reason per choice; the usage chunk comes last when
    asked for. Keep-alives and failures are the route's (SSE comments, an `error` event)."""

    request: CompletionRequest
    created: int
    completion_id: str = field(default_factory=new_completion_id)
    _usages: list[Usage] = field(default_factory=list)

    def start(self) -> list[dict[str, Any]]:
        if not self.request.echo:
            return []
        n = self.request.choices
        return [
            self._chunk(number * n + choice, prompt, None)
            for number, prompt in enumerate(self.request.prompts)
            for choice in range(n)
            if prompt
        ]

    def feed(self, prompt_index: int, event: CoreEvent) -> list[dict[str, Any]]:
        if isinstance(event, TextDelta | ChoiceDone):
            index = prompt_index * self.request.choices + event.choice
            if isinstance(event, TextDelta):
                return [self._chunk(index, event.text, None)] if event.text else []
            return [self._chunk(index, "", finish_reason(event.finish_reason))]
        if isinstance(event, StreamUsage):  # kept for the closing usage chunk
            self._usages.append(event.usage)
        return []

    def usage_chunk(self) -> dict[str, Any]:
        return {**self._base(), "choices": [], "usage": usage_object(self._usages)}

    def _chunk(self, index: int, text: str, finish: str | None) -> dict[str, Any]:
        chunk = {**self._base(), "choices": [_choice(index, text, finish)]}
        if self.request.include_usage:
            chunk["usage"] = None
        return chunk

    def _base(self) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": "text_completion",
            "created": self.created,
            "model": self.request.model,
        }
