"""Anthropic's Messages API (`POST /v1/messages`) ⇄ the chat core, as pure functions.

Request side: `core_request` maps the wire request (`messages_wire.py`) — `system`, the content blocks,
`tools`, `tool_choice`, `stop_sequences`, `max_tokens` and `output_config.format` — onto a `CoreRequest`.
Response side: a `CoreResult` becomes a `message` object, and `MessageStream` turns core events into
Anthropic's stream events (message_start … message_stop).
What maps, what is ignored and what is refused is listed in docs/messages.md.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from onemin_relay.core.types import (
    ChoiceDone,
    ChoiceOut,
    CoreEvent,
    CoreRequest,
    CoreResult,
    KeepAlive,
    OutputFormat,
    SearchContextSize,
    StreamFailure,
    StreamUsage,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    ToolChoice,
    ToolSpec,
    Usage,
)
from onemin_relay.errors import OpenAIError, anthropic_error, invalid_request
from onemin_relay.translate import chat_wire as wire
from onemin_relay.translate.messages_wire import (
    ContentSource,
    DocumentBlock,
    FileSource,
    ImageBlock,
    MessagesRequest,
    PlainTextSource,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolChoiceParam,
    ToolParam,
    ToolResultBlock,
    ToolUseBlock,
    URLSource,
)

# Anthropic's server-side web search tool (`web_search_20250305`, …) maps to 1min.ai's web search.
_WEB_SEARCH_TOOL = "web_search_"
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


# --- request side ------------------------------------------------------------------------------


def core_request(request: MessagesRequest) -> CoreRequest:
    """The request in the core's terms: the transcript as chat-completions messages, the tools, the limits."""
    tools, web_search = _tools(request.tools or [])
    choice = request.tool_choice
    if choice is not None and choice.type == "tool":
        if not choice.name:
            raise invalid_request("tool_choice of type 'tool' needs a 'name'.", param="tool_choice.name")
        if choice.name not in {tool.name for tool in tools}:
            raise invalid_request(
                f"tool_choice names the tool '{choice.name}', which is not in 'tools'.",
                param="tool_choice.name",
            )
    output = OutputFormat()
    if request.output_config is not None and request.output_config.format is not None:
        output = OutputFormat(kind="json_schema", schema=request.output_config.format.schema_, strict=True)
    return CoreRequest(
        model=request.model,
        messages=transcript(request),
        tools=tools,
        tool_choice=_tool_choice(choice),
        parallel_tool_calls=not (choice is not None and choice.disable_parallel_tool_use),
        output=output,
        stop=tuple(stop for stop in request.stop_sequences or () if stop),
        token_limit=request.max_tokens,
        web_search=web_search,
    )


def _tools(tools: Sequence[ToolParam]) -> tuple[tuple[ToolSpec, ...], SearchContextSize | None]:
    specs: list[ToolSpec] = []
    web_search: SearchContextSize | None = None
    for index, tool in enumerate(tools):
        if tool.type is not None and tool.type.startswith(_WEB_SEARCH_TOOL):
            web_search = "medium"
        elif tool.type not in {None, "custom"}:
            raise invalid_request(
                f"The server tool '{tool.type}' is not available through 1min.ai: only client tools "
                "(with an input_schema) and web search are.",
                param=f"tools.{index}.type",
                code="unsupported_tool",
            )
        elif tool.input_schema is None:
            raise invalid_request(
                f"Missing required parameter: 'tools.{index}.input_schema'.",
                param=f"tools.{index}.input_schema",
            )
        else:
            specs.append(
                ToolSpec(tool.name, tool.description or "", tool.input_schema, strict=bool(tool.strict))
            )
    return tuple(specs), web_search


def _tool_choice(choice: ToolChoiceParam | None) -> ToolChoice:
    if choice is None or choice.type == "auto":
        return ToolChoice("auto")
    if choice.type == "none":
        return ToolChoice("none")
    if choice.type == "any":
        return ToolChoice("required")
    return ToolChoice("required", (choice.name or "",))


def transcript(request: MessagesRequest) -> list[wire.Message]:
    """`system` and `messages` as chat-completions turns: a user turn's `tool_result` blocks become `tool`
    messages (in block order), an assistant turn's `tool_use` blocks its `tool_calls`."""
    turns: list[wire.Message] = []
    system = request.system
    if isinstance(system, list):
        system = "\n\n".join(block.text for block in system)
    if system:
        turns.append(wire.Message(role="system", content=system))
    for index, message in enumerate(request.messages):
        param = f"messages.{index}.content"
        if isinstance(message.content, str):
            turns.append(wire.Message(role=message.role, content=message.content))
        elif message.role == "assistant":
            turns.append(_assistant_turn(message.content, param))
        else:
            turns += _user_turns(message.content, param)
    return turns


def _assistant_turn(blocks: Sequence[Any], param: str) -> wire.Message:
    texts: list[str] = []
    calls: list[wire.ToolCall | wire.CustomToolCall] = []
    for position, block in enumerate(blocks):
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ToolUseBlock):
            arguments = json.dumps(block.input, ensure_ascii=False, separators=(",", ":"))
            calls.append(
                wire.ToolCall(id=block.id, function=wire.FunctionCall(name=block.name, arguments=arguments))
            )
        elif not isinstance(block, ThinkingBlock | RedactedThinkingBlock):
            raise invalid_request(
                f"An assistant turn takes text, tool_use and thinking blocks, not '{block.type}'.",
                param=f"{param}.{position}",
            )
    return wire.Message(role="assistant", content="\n".join(texts) or None, tool_calls=calls or None)


def _user_turns(blocks: Sequence[Any], param: str) -> list[wire.Message]:
    turns: list[wire.Message] = []
    parts: list[Any] = []
    for position, block in enumerate(blocks):
        where = f"{param}.{position}"
        if isinstance(block, ToolResultBlock):
            if parts:
                turns.append(wire.Message(role="user", content=parts))
                parts = []
            turns.append(_tool_result(block, where))
        elif isinstance(block, ToolUseBlock | ThinkingBlock | RedactedThinkingBlock):
            raise invalid_request(f"A user turn cannot hold a '{block.type}' block.", param=where)
        else:
            parts += _parts(block, where)
    if parts or not turns:
        turns.append(wire.Message(role="user", content=parts))
    return turns


def _tool_result(block: ToolResultBlock, param: str) -> wire.Message:
    content = block.content or ""
    parts: list[Any] = (
        [wire.TextPart(type="text", text="(the tool reported an error)")] if block.is_error else []
    )
    if isinstance(content, str):
        parts.append(wire.TextPart(type="text", text=content))
    else:
        for position, inner in enumerate(content):
            parts += _parts(inner, f"{param}.content.{position}")
    return wire.Message(role="tool", content=parts, tool_call_id=block.tool_use_id)


def _parts(block: TextBlock | ImageBlock | DocumentBlock, param: str) -> list[Any]:
    """A text, image or document block as chat-completions content parts."""
    if isinstance(block, TextBlock):
        return [wire.TextPart(type="text", text=block.text)]
    if isinstance(block, ImageBlock):
        return [_image(block, f"{param}.source")]
    return _document(block, f"{param}.source")


def _image(block: ImageBlock, param: str) -> Any:
    source = block.source
    if isinstance(source, FileSource):
        return wire.FilePart(type="file", file=wire.FileRef(file_id=source.file_id))
    if isinstance(source, URLSource):
        url = source.url
    else:
        if not source.media_type.startswith("image/"):
            raise invalid_request(
                f"An image's media_type must be an image type, not '{source.media_type}'.",
                param=f"{param}.media_type",
            )
        url = f"data:{source.media_type};base64,{source.data}"
    return wire.ImagePart(type="image_url", image_url=wire.ImageURL(url=url))


def _document(block: DocumentBlock, param: str) -> list[Any]:
    source = block.source
    heading = [wire.TextPart(type="text", text=text) for text in (block.title, block.context) if text]
    if isinstance(source, PlainTextSource):
        return [*heading, wire.TextPart(type="text", text=source.data)]
    if isinstance(source, ContentSource):
        inner = source.content
        if isinstance(inner, str):
            return [*heading, wire.TextPart(type="text", text=inner)]
        return heading + [
            part
            for position, item in enumerate(inner)
            for part in _parts(item, f"{param}.content.{position}")
        ]
    if isinstance(source, FileSource):
        return [*heading, wire.FilePart(type="file", file=wire.FileRef(file_id=source.file_id))]
    if isinstance(source, URLSource):
        raise invalid_request(
            "A document by URL is not supported: send it as base64 data, or upload it to /v1/files and "
            "refer to it by file_id.",
            param=f"{param}.url",
            code="unsupported_content",
        )
    if source.media_type != "application/pdf":
        raise invalid_request(
            f"A base64 document must be a PDF (media_type 'application/pdf'), not '{source.media_type}'.",
            param=f"{param}.media_type",
        )
    pdf = wire.FilePart(type="file", file=wire.FileRef(file_data=source.data, filename="document.pdf"))
    return [*heading, pdf]


# --- response side -----------------------------------------------------------------------------


def new_message_id(record_id: str | None = None) -> str:
    suffix = record_id.replace("-", "") if record_id else secrets.token_hex(12)
    return f"msg_{suffix}"


def tool_use_id(call_id: str) -> str:
    """The core's `call_…` ids as Anthropic's `toolu_…` (clients send them back as `tool_use_id`)."""
    return "toolu_" + call_id.removeprefix("call_")


def stop_reason(finish_reason: str, stop_sequence: str | None) -> str:
    if finish_reason == "stop" and stop_sequence is not None:
        return "stop_sequence"
    return _STOP_REASONS.get(finish_reason, "end_turn")


def usage_object(usage: Usage | None) -> dict[str, Any]:
    """Anthropic's usage; 1min.ai has no prompt cache, so its cache counts are 0."""
    return {
        "input_tokens": usage.prompt_tokens if usage else 0,
        "output_tokens": usage.completion_tokens if usage else 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": None,
        "server_tool_use": None,
        "service_tier": "standard",
        "inference_geo": None,
        "output_tokens_details": None,
    }


def _delta_usage(usage: Usage | None) -> dict[str, Any]:
    full = usage_object(usage)
    return {
        name: full[name]
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "server_tool_use",
            "output_tokens_details",
        )
    }


def _text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text, "citations": None}


def _tool_use_block(call_id: str, name: str, tool_input: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": tool_use_id(call_id),
        "name": name,
        "input": dict(tool_input),
        "caller": {"type": "direct"},
    }


def _message(
    message_id: str, model: str, content: list[dict[str, Any]], usage: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": None,
        "stop_sequence": None,
        "stop_details": None,
        "container": None,
        "usage": usage,
    }


def message_object(result: CoreResult, model: str) -> dict[str, Any]:
    """The `message` for a whole answer: its text (one block; none when it only called tools), then one
    `tool_use` block per call."""
    choice: ChoiceOut = result.choices[0]
    content: list[dict[str, Any]] = []
    if choice.text or not choice.tool_calls:
        content.append(_text_block(choice.text or ""))
    for call in choice.tool_calls:
        content.append(_tool_use_block(call.id, call.name, _arguments(call.arguments)))
    message = _message(new_message_id(result.record_id), model, content, usage_object(result.usage))
    message["stop_reason"] = stop_reason(choice.finish_reason, choice.stop_sequence)
    message["stop_sequence"] = choice.stop_sequence
    return message


def _arguments(arguments: str) -> dict[str, Any]:
    """A call's JSON arguments as the `input` object (the core hands over an object's JSON text)."""
    try:
        value = json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def error_event(error: OpenAIError) -> dict[str, Any]:
    """The stream's `error` event: Anthropic's error body for an `OpenAIError`."""
    return anthropic_error(error)[1]


@dataclass
class MessageStream:
    """Core stream events → Anthropic's stream events, in order: `message_start`; per content block
    `content_block_start`, its deltas, `content_block_stop`; then `message_delta` (stop reason, usage) and
    `message_stop`. Keep-alives are `ping`s; a failure is an `error` event and the end."""

    model: str
    message_id: str = field(default_factory=new_message_id)
    _blocks: int = 0  # content blocks opened so far
    _open: Literal["text", "tool_use"] | None = None
    _done: ChoiceDone | None = None
    finished: bool = False

    def start(self) -> list[dict[str, Any]]:
        return [
            {
                "type": "message_start",
                "message": _message(self.message_id, self.model, [], usage_object(None)),
            }
        ]

    def feed(self, event: CoreEvent) -> list[dict[str, Any]]:
        if self.finished or getattr(event, "choice", 0) != 0:
            return []
        if isinstance(event, TextDelta):
            if not event.text:
                return []
            opened = self._open_block("text", _text_block("")) if self._open != "text" else []
            return [*opened, self._delta({"type": "text_delta", "text": event.text})]
        if isinstance(event, ToolCallStart):
            block = _tool_use_block(event.id, event.name, {})
            return self._open_block("tool_use", block)
        if isinstance(event, ToolCallDelta):
            if self._open != "tool_use" or not event.arguments:
                return []
            return [self._delta({"type": "input_json_delta", "partial_json": event.arguments})]
        if isinstance(event, ChoiceDone):
            self._done = event
            if self._blocks == 0:  # an empty answer still has its (empty) text block, as when not streamed
                return [*self._open_block("text", _text_block("")), *self._close_block()]
            return self._close_block()
        if isinstance(event, StreamUsage):
            return self.finish(event.usage)
        if isinstance(event, KeepAlive):
            return [{"type": "ping"}]
        if isinstance(event, StreamFailure):
            self.finished = True
            return [error_event(event.error)]
        return []

    def finish(self, usage: Usage | None = None) -> list[dict[str, Any]]:
        """The closing `message_delta` and `message_stop` (once)."""
        if self.finished:
            return []
        self.finished = True
        events = self._close_block()
        done = self._done
        delta = {
            "stop_reason": stop_reason(done.finish_reason, done.stop_sequence) if done else "end_turn",
            "stop_sequence": done.stop_sequence if done else None,
            "stop_details": None,
            "container": None,
        }
        return [
            *events,
            {"type": "message_delta", "delta": delta, "usage": _delta_usage(usage)},
            {"type": "message_stop"},
        ]

    def _open_block(self, kind: Literal["text", "tool_use"], block: dict[str, Any]) -> list[dict[str, Any]]:
        events = self._close_block()
        self._open = kind
        self._blocks += 1
        return [*events, {"type": "content_block_start", "index": self._blocks - 1, "content_block": block}]

    def _close_block(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        self._open = None
        return [{"type": "content_block_stop", "index": self._blocks - 1}]

    def _delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": self._blocks - 1, "delta": delta}
