"""OpenAI Responses ⇄ the chat core, as pure functions.

Request side: input items (after the stored turns of `previous_response_id`) become chat-wire messages,
tools and formats their core equivalents. Response side: a `CoreResult` becomes a `response` object.
Stored side: what the relay keeps of a response to list its input items and continue its conversation.
The stream's events are in `responses_stream.py`.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from onemin_relay.core.types import (
    ChoiceOut,
    CoreRequest,
    OutputFormat,
    SearchContextSize,
    ToolCallOut,
    ToolChoice,
    ToolSpec,
    Usage,
)
from onemin_relay.errors import OpenAIError, invalid_request
from onemin_relay.translate.chat_wire import Message
from onemin_relay.translate.responses_wire import (
    WEB_SEARCH_TOOLS,
    AllowedTools,
    ContentPart,
    CreateResponseRequest,
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionTool,
    HostedToolChoice,
    InputFile,
    InputImage,
    InputItem,
    InputText,
    ItemReference,
    JsonObjectFormat,
    JsonSchemaFormat,
    MessageItem,
    NamedFunction,
    OutputText,
    Refusal,
    WebSearchTool,
)
from onemin_relay.translate.structured import schema_problem

Status = Literal["completed", "incomplete", "failed", "in_progress"]

_ITEMS = TypeAdapter(list[InputItem])


def new_id(prefix: str) -> str:
    """`resp_…`, `msg_…`, `fc_…`: the prefix OpenAI uses, then 48 hex digits."""
    return f"{prefix}_{secrets.token_hex(24)}"


# --- request side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Translated:
    """The core request, and where each of its messages' content came from in the Responses request."""

    core: CoreRequest
    content_params: tuple[str, ...]

    def renamed(self, error: OpenAIError) -> OpenAIError:
        """An error the core raised about a message's content (`input.3.content.1…`, counted in core
        messages), naming the Responses parameter it came from instead (instructions, earlier turns and
        calls joined into one turn shift the count)."""
        found = re.fullmatch(r"(?:messages|input)\.(\d+)\.content(.*)", error.param or "", re.DOTALL)
        if found is None or int(found.group(1)) >= len(self.content_params):
            return error
        # chat's `image_url.url` and `file.file_id` are `image_url` and `file_id` in a Responses part
        part = re.sub(r"^(\.\d+\.image_url)\.url$", r"\1", found.group(2))
        part = re.sub(r"^(\.\d+)\.file\.", r"\1.", part)
        param = self.content_params[int(found.group(1))] + part
        return OpenAIError(
            error.status, error.message, type=error.type, param=param, code=error.code, headers=error.headers
        )


def core_request(request: CreateResponseRequest, history: Sequence[InputItem] = ()) -> Translated:
    """The core request for a Responses request whose earlier turns (from `previous_response_id`) are
    `history`. Instructions are the request's own: those of earlier responses are not carried over."""
    tools, web_search = _tools(request)
    choice, choice_search = _tool_choice(request, tools)
    turns: list[tuple[dict[str, Any], str]] = []
    if request.instructions:
        turns.append(({"role": "system", "content": request.instructions}, "instructions"))
    turns += transcript(history, param="previous_response_id")
    turns += transcript(request.items, param="input")
    if not turns:
        raise invalid_request(
            "Missing required parameter: 'input' (or 'previous_response_id' to continue a response).",
            param="input",
            code="missing_required_parameter",
        )
    core = CoreRequest(
        model=request.model,
        messages=[Message.model_validate(message) for message, _ in turns],
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=request.parallel_tool_calls is not False,
        output=_output_format(request),
        token_limit=request.max_output_tokens,
        web_search=web_search or choice_search,
        param_prefix="input",
    )
    return Translated(core, tuple(where for _, where in turns))


def transcript(items: Sequence[InputItem], *, param: str) -> list[tuple[dict[str, Any], str]]:
    """Chat-wire messages (as dicts) for input items, each with the parameter its content came from.
    Calls that follow an assistant message (or each other) join it, as one assistant turn with
    `tool_calls`; reasoning items are left out."""
    turns: list[tuple[dict[str, Any], str]] = []
    open_turn: dict[str, Any] | None = None  # the assistant turn the next function_call joins
    for index, item in enumerate(items):
        where = f"{param}.{index}"
        if isinstance(item, FunctionCallItem):
            if open_turn is None:
                open_turn = {"role": "assistant", "content": None}
                turns.append((open_turn, f"{where}.content"))
            call = {"id": item.call_id, "type": "function", "function": _call(item)}
            open_turn.setdefault("tool_calls", []).append(call)
            continue
        if isinstance(item, MessageItem):
            message = {"role": item.role, "content": _content(item.content, f"{where}.content")}
            turns.append((message, f"{where}.content"))
            open_turn = message if item.role == "assistant" else None
            continue
        open_turn = None
        if isinstance(item, FunctionCallOutputItem):
            content = _content(item.output, f"{where}.output")
            turns.append(
                ({"role": "tool", "tool_call_id": item.call_id, "content": content}, f"{where}.output")
            )
        elif isinstance(item, ItemReference):
            raise invalid_request(
                "Item references are not supported by the relay; send the item itself, or continue the "
                "response it belongs to with 'previous_response_id'.",
                param=f"{where}.id",
                code="unsupported_item",
            )
    return turns


def _call(item: FunctionCallItem) -> dict[str, str]:
    return {"name": item.name, "arguments": item.arguments}


def _content(content: str | Sequence[ContentPart], param: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    return [_part(part, f"{param}.{index}") for index, part in enumerate(content)]


def _part(part: ContentPart, param: str) -> dict[str, Any]:
    if isinstance(part, InputText | OutputText):
        return {"type": "text", "text": part.text}
    if isinstance(part, Refusal):
        return {"type": "refusal", "refusal": part.refusal}
    if isinstance(part, InputImage):
        if part.image_url:
            detail = part.detail if part.detail in ("auto", "low", "high") else None
            return {"type": "image_url", "image_url": {"url": part.image_url, "detail": detail}}
        if part.file_id:
            return {"type": "file", "file": {"file_id": part.file_id}}
        raise invalid_request("An input_image needs 'image_url' or 'file_id'.", param=param)
    return _file_part(part, param)


def _file_part(part: InputFile, param: str) -> dict[str, Any]:
    if part.file_id:
        return {"type": "file", "file": {"file_id": part.file_id}}
    if part.file_data:
        return {"type": "file", "file": {"file_data": part.file_data, "filename": part.filename}}
    if part.file_url:
        raise invalid_request(
            "An input_file by 'file_url' is not supported by the relay; upload it with /v1/files and send "
            "its 'file_id', or send 'file_data'.",
            param=f"{param}.file_url",
            code="unsupported_content",
        )
    raise invalid_request("An input_file needs 'file_id' or 'file_data' with 'filename'.", param=param)


def _tools(request: CreateResponseRequest) -> tuple[tuple[ToolSpec, ...], SearchContextSize | None]:
    """Function tools (names unique, parameters a usable JSON Schema) and the web search asked for."""
    specs: dict[str, ToolSpec] = {}
    web_search: SearchContextSize | None = None
    for index, tool in enumerate(request.tools or ()):
        if isinstance(tool, WebSearchTool):
            web_search = tool.search_context_size or "medium"
        if not isinstance(tool, FunctionTool):
            continue
        if tool.name in specs:
            raise invalid_request(
                f"Two tools are named {tool.name!r}; tool names must be unique.", param=f"tools.{index}.name"
            )
        problem = schema_problem(tool.parameters) if tool.parameters is not None else None
        if problem is not None:
            raise invalid_request(
                f"Invalid JSON Schema for function {tool.name!r}: {problem}",
                param=f"tools.{index}.parameters",
                code="invalid_function_parameters",
            )
        specs[tool.name] = ToolSpec(tool.name, tool.description or "", tool.parameters, bool(tool.strict))
    return tuple(specs.values()), web_search


def _tool_choice(
    request: CreateResponseRequest, tools: Sequence[ToolSpec]
) -> tuple[ToolChoice, SearchContextSize | None]:
    """The core's tool choice (`none` when no function is offered), and the web search a hosted tool
    choice turns on."""
    choice = request.tool_choice
    names = {tool.name for tool in tools}
    if choice is None or isinstance(choice, str):
        return ToolChoice(choice or "auto" if tools else "none"), None
    if isinstance(choice, NamedFunction):
        if choice.name not in names:
            raise invalid_request(
                f"Tool choice '{choice.name}' names no function in 'tools'.",
                param="tool_choice.name",
                code="invalid_value",
            )
        return ToolChoice("required", (choice.name,)), None
    if isinstance(choice, AllowedTools):
        allowed = tuple(str(tool.get("name")) for tool in choice.tools if tool.get("type") == "function")
        unknown = [name for name in allowed if name not in names]
        if unknown:
            raise invalid_request(
                f"Allowed tool '{unknown[0][:64]}' names no function in 'tools'.",
                param="tool_choice.tools",
                code="invalid_value",
            )
        return ToolChoice(choice.mode, allowed), None
    assert isinstance(choice, HostedToolChoice)
    if choice.type in WEB_SEARCH_TOOLS:
        return ToolChoice("auto" if tools else "none"), "medium"
    raise invalid_request(
        f"Tool choice '{choice.type[:64]}' is not available through 1min.ai.",
        param="tool_choice.type",
        code="unsupported_tool",
    )


def _output_format(request: CreateResponseRequest) -> OutputFormat:
    chosen = request.text.format if request.text else None
    if isinstance(chosen, JsonObjectFormat):
        return OutputFormat("json_object")
    if isinstance(chosen, JsonSchemaFormat):
        problem = schema_problem(chosen.schema_)
        if problem is not None:
            raise invalid_request(f"Invalid JSON Schema: {problem}", param="text.format.schema")
        return OutputFormat(
            "json_schema",
            schema=chosen.schema_,
            name=chosen.name,
            description=chosen.description,
            strict=bool(chosen.strict),
        )
    return OutputFormat()


# --- response side -----------------------------------------------------------------------------


def request_echo(request: CreateResponseRequest) -> dict[str, Any]:
    """The request's settings as the response object repeats them."""
    text = request.text.model_dump(mode="json", by_alias=True, exclude_none=True) if request.text else {}
    text.setdefault("format", {"type": "text"})
    text.setdefault("verbosity", "medium")
    tool_choice = request.tool_choice or "auto"
    echo = {
        "background": False,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": request.max_tool_calls,
        "metadata": dict(request.metadata or {}),
        "model": request.model,
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": request.store is not False,
        "temperature": request.temperature if request.temperature is not None else 1.0,
        "text": text,
        "tool_choice": tool_choice
        if isinstance(tool_choice, str)
        else tool_choice.model_dump(mode="json", exclude_none=True),
        "tools": [_tool_echo(tool) for tool in request.tools or ()],
        "top_logprobs": request.top_logprobs or 0,
        "top_p": request.top_p if request.top_p is not None else 1.0,
        "truncation": request.truncation or "disabled",
    }
    # Not nullable in OpenAI's schema: present only when the request set them.
    identifiers = {
        "user": request.user,
        "safety_identifier": request.safety_identifier,
        "prompt_cache_key": request.prompt_cache_key,
    }
    return echo | {name: value for name, value in identifiers.items() if value is not None}


def _tool_echo(tool: Any) -> dict[str, Any]:
    shown: dict[str, Any] = tool.model_dump(mode="json", exclude_none=True)
    if isinstance(tool, FunctionTool):
        shown.setdefault("description", None)
        shown.setdefault("parameters", None)
        shown["strict"] = bool(tool.strict)
    return shown


def response_object(
    response_id: str,
    created_at: int,
    echo: Mapping[str, Any],
    *,
    status: Status,
    output: Sequence[Mapping[str, Any]] = (),
    usage: Usage | None = None,
    error: OpenAIError | None = None,
    incomplete_reason: str | None = None,
) -> dict[str, Any]:
    body = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error_object(error) if error is not None else None,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        **echo,
        "output": [dict(item) for item in output],
    }
    if usage is not None:  # not nullable in OpenAI's schema: absent until known
        body["usage"] = usage_object(usage)
    return body


def error_object(error: OpenAIError) -> dict[str, str]:
    """A response's `error`: OpenAI's codes there are few (ResponseErrorCode); the message keeps detail."""
    if error.status == 429:
        code = "rate_limit_exceeded"
    elif error.status < 500:
        code = "invalid_prompt"
    else:
        code = "server_error"
    return {"code": code, "message": error.message}


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


@dataclass(frozen=True)
class Outcome:
    """How an answer ended, in Responses terms."""

    status: Status
    incomplete_reason: str | None


def outcome(finish_reason: str) -> Outcome:
    if finish_reason == "length":
        return Outcome("incomplete", "max_output_tokens")
    if finish_reason == "content_filter":
        return Outcome("incomplete", "content_filter")
    return Outcome("completed", None)


def message_item(item_id: str, text: str, status: Status) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [text_part(text)],
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(item_id: str, call: ToolCallOut, status: Status) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
    }


def output_items(choice: ChoiceOut) -> list[dict[str, Any]]:
    """A whole answer's output: its text as one message (left out when the model only called tools),
    then one function_call item per call."""
    status: Status = "incomplete" if outcome(choice.finish_reason).status == "incomplete" else "completed"
    items = []
    if choice.text or not choice.tool_calls:
        items.append(message_item(new_id("msg"), choice.text or "", status))
    items += [call_item(new_id("fc"), call, "completed") for call in choice.tool_calls]
    return items


# --- stored side -------------------------------------------------------------------------------


def stored_input_items(request: CreateResponseRequest) -> list[dict[str, Any]]:
    """The request's input items as `input_items` lists them: each with an id and a status, message
    content always as a list of parts (an assistant message's text as `output_text`)."""
    stored = []
    for item in request.items:
        if isinstance(item, MessageItem):
            content = item.content
            if isinstance(content, str):
                part = text_part(content) if item.role == "assistant" else {"type": "input_text"}
                content_list = [{**part, "text": content}]
            else:
                content_list = [part.model_dump(mode="json", exclude_none=True) for part in content]
            stored.append(
                {
                    "id": item.id or new_id("msg"),
                    "type": "message",
                    "role": item.role,
                    "content": content_list,
                    "status": "completed",
                }
            )
        elif isinstance(item, FunctionCallItem | FunctionCallOutputItem):
            shown = item.model_dump(mode="json", exclude_none=True)
            prefix = "fc" if isinstance(item, FunctionCallItem) else "fco"
            stored.append({**shown, "id": item.id or new_id(prefix), "status": "completed"})
    return stored


def stored_items(items: Sequence[Mapping[str, Any]]) -> list[InputItem]:
    """Stored input or output items, as input items again (to continue their conversation)."""
    try:
        return _ITEMS.validate_python(list(items))
    except ValidationError:  # written by this relay: a failure here is a bug, not bad input
        raise OpenAIError(500, "A stored response could not be read back.") from None
