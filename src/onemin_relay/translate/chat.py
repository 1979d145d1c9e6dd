"""OpenAI chat ⇄ 1min.ai chat-with-ai, as pure functions.

Request side: the OpenAI `messages` are folded into the single upstream `prompt` (transcript format in
docs/chat.md), image/file parts are enumerated for upload, and the upstream payload is built.
Response side: the answer text and finish reason in an aiRecord. (Every dialect shares these through the
chat core; the chat-completions wire objects are in `translate/chat_completions.py`.)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from onemin_relay.errors import invalid_request
from onemin_relay.translate.chat_wire import (
    AudioPart,
    FilePart,
    ImagePart,
    Message,
    RefusalPart,
    TextPart,
    ToolCall,
)
from onemin_relay.translate.output import FinishReason
from onemin_relay.translate.tools import render_call
from onemin_relay.upstream.sse import record_text

CHAT_TYPE = "UNIFY_CHAT_WITH_AI"
ONLINE_SUFFIX = ":online"
# Upstream `finishReason` → OpenAI `finish_reason`. 1min.ai may pass on its providers' own words
# (Anthropic `max_tokens`, Gemini `MAX_TOKENS`/`SAFETY`); anything else is a normal `stop`.
FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "max_tokens": "length",
    "max_output_tokens": "length",
    "safety": "content_filter",
}
# How much the web search reads for OpenAI's `search_context_size` (1min.ai defaults: 3 sites, 1000 words).
SEARCH_CONTEXT = {"low": (2, 500), "medium": (3, 1000), "high": (5, 2000)}

_ROLE_LABELS = {
    "system": "System",
    "developer": "System",
    "user": "User",
    "assistant": "Assistant",
    "tool": "Tool",
    "function": "Function",
}


# --- request side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaPart:
    """An image or file content part, numbered in conversation order (`[image 1]`, `[file 1: …]`)."""

    kind: Literal["image", "file"]
    number: int
    param: str  # where it sits in the request, for error messages: `messages.2.content.1`
    part: ImagePart | FilePart


def split_online(model: str) -> tuple[str, bool]:
    """`gpt-4o:online` → (`gpt-4o`, True): the suffix some clients use to ask for web search."""
    if model.endswith(ONLINE_SUFFIX) and len(model) > len(ONLINE_SUFFIX):
        return model[: -len(ONLINE_SUFFIX)], True
    return model, False


def media_parts(messages: Sequence[Message], param_prefix: str = "messages") -> list[MediaPart]:
    """Every image and file part, in order. Audio input has no upstream equivalent: 400, not dropped.
    `param_prefix` names the transcript in error messages (`messages`, or a dialect's own `input`)."""
    found: list[MediaPart] = []
    counters = {"image": 0, "file": 0}
    for m, message in enumerate(messages):
        if isinstance(message.content, str) or message.content is None:
            continue
        for p, part in enumerate(message.content):
            param = f"{param_prefix}.{m}.content.{p}"
            if isinstance(part, AudioPart):
                raise invalid_request(
                    "Audio input is not supported by 1min.ai chat; transcribe it first with "
                    "/v1/audio/transcriptions and send the text.",
                    param=param,
                    code="unsupported_content",
                )
            if isinstance(part, ImagePart | FilePart):
                kind: Literal["image", "file"] = "image" if isinstance(part, ImagePart) else "file"
                counters[kind] += 1
                found.append(MediaPart(kind, counters[kind], param, part))
    return found


def build_prompt(
    messages: Sequence[Message], file_names: Mapping[str, str] | None = None, *, always_label: bool = False
) -> str:
    """Fold the conversation into one prompt: system/developer instructions first, then the turns in
    order (so the latest user turn comes last), each as `Label: text`. A lone user message is sent as
    its own text, unless it is blank (1min.ai refuses an empty prompt where OpenAI answers an empty
    message, so that one keeps its label) or `always_label` is set (the relay adds instructions before
    it). `file_names` gives the names of `file_id` parts for their `[file N: name]` markers."""
    rendered = list(_render_all(messages, file_names or {}))
    if len(messages) == 1 and messages[0].role == "user" and rendered[0][2].strip() and not always_label:
        return rendered[0][2]
    first = [entry for entry in rendered if entry[0] in {"system", "developer"}]
    rest = [entry for entry in rendered if entry[0] not in {"system", "developer"}]
    return "\n\n".join(f"{label}: {text}" for _, label, text in first + rest)


def _render_all(messages: Sequence[Message], names: Mapping[str, str]) -> Iterator[tuple[str, str, str]]:
    """(role, label, text) per transcript entry. An assistant's tool calls are written the way the model is
    told to write them (`translate/tools.render_call`); a tool result names the tool it answers."""
    counters = {"image": 0, "file": 0}
    called: dict[str, str] = {}  # tool_call_id → tool name
    for message in messages:
        text = _render_content(message, counters, names)
        label = _ROLE_LABELS[message.role] + (f" ({message.name})" if message.name else "")
        if message.role == "tool":
            call_id = message.tool_call_id or ""
            label = "Tool result" + (
                f" ({called[call_id]})" if call_id in called else f" (call {call_id})" if call_id else ""
            )
        elif message.role == "function":
            label = f"Function result ({message.name or 'function'})"
        elif message.role == "assistant":
            if message.refusal:
                text = "\n".join(filter(None, [text, f"(refused: {message.refusal})"]))
            calls = [
                (call.function.name, call.function.arguments, call.id)
                if isinstance(call, ToolCall)
                else (call.custom.name, call.custom.input, call.id)
                for call in message.tool_calls or []
            ]
            if message.function_call is not None:
                calls.append((message.function_call.name, message.function_call.arguments, ""))
            called.update((call_id, name) for name, _, call_id in calls if call_id)
            text = "\n".join(
                [text] * bool(text) + [render_call(name, arguments) for name, arguments, _ in calls]
            )
        yield message.role, label, text


def _render_content(message: Message, counters: dict[str, int], names: Mapping[str, str]) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    pieces: list[str] = []
    for part in content:
        if isinstance(part, TextPart):
            pieces.append(part.text)
        elif isinstance(part, RefusalPart):
            pieces.append(f"(refused: {part.refusal})")
        elif isinstance(part, ImagePart):
            counters["image"] += 1
            pieces.append(f"[image {counters['image']}]")
        elif isinstance(part, FilePart):
            counters["file"] += 1
            name = part.file.filename or names.get(part.file.file_id or "", "")
            pieces.append(f"[file {counters['file']}: {name}]" if name else f"[file {counters['file']}]")
    return "\n".join(pieces)


def build_payload(
    model: str,
    prompt: str,
    *,
    images: Sequence[str] = (),
    files: Sequence[str] = (),
    web_search: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `POST /api/chat-with-ai` body."""
    prompt_object: dict[str, Any] = {"prompt": prompt}
    if web_search:
        prompt_object["settings"] = {"webSearchSettings": dict(web_search)}
    if images or files:
        prompt_object["attachments"] = {"images": list(images), "files": list(files)}
    return {"type": CHAT_TYPE, "model": model, "promptObject": prompt_object}


# --- response side -----------------------------------------------------------------------------


def answer_text(record: dict[str, Any]) -> str:
    """The answer in an aiRecord (`aiRecordDetail.resultObject[0]`), or "" when it has none."""
    return record_text(record) or ""


def record_metadata(record: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    metadata = record.get("metadata") if record else None
    return metadata if isinstance(metadata, Mapping) else None


def finish_reason(relay_cut: FinishReason | None, record: Mapping[str, Any] | None) -> FinishReason:
    """The relay's own cut (`stop` sequence, `length` limit) wins; otherwise upstream's `finishReason`."""
    if relay_cut is not None:
        return relay_cut
    metadata = record_metadata(record)
    upstream = metadata.get("finishReason") if metadata else None
    return FINISH_REASONS.get(upstream.lower(), "stop") if isinstance(upstream, str) else "stop"
