"""The chat-completions dialect, as pure functions: an OpenAI `ChatCompletionRequest` → a `CoreRequest`,
and what the core answers → `chat.completion` / `chat.completion.chunk` objects."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from onemin_relay.core.types import (
    ChoiceOut,
    CoreRequest,
    FinishReason,
    OutputFormat,
    ToolCallOut,
    ToolChoice,
    ToolSpec,
    Usage,
)
from onemin_relay.errors import invalid_request
from onemin_relay.translate.chat_wire import (
    AllowedToolsChoice,
    ChatCompletionRequest,
    CustomTool,
    CustomToolChoice,
    FunctionDefinition,
    NamedFunction,
    NamedToolChoice,
)
from onemin_relay.translate.structured import schema_problem


def core_request(chat: ChatCompletionRequest) -> CoreRequest:
    """The request for the core; a tool, tool choice or response format it cannot honour is a 400."""
    search = None
    if chat.web_search_options is not None:
        search = chat.web_search_options.search_context_size or "medium"
    legacy = chat.uses_legacy_functions
    tools = _legacy_tools(chat) if legacy else _tools(chat)
    return CoreRequest(
        model=chat.model,
        messages=chat.messages,
        tools=tools,
        tool_choice=_legacy_choice(chat, tools) if legacy else _tool_choice(chat, tools),
        parallel_tool_calls=not legacy and chat.parallel_tool_calls is not False,
        output=_output_format(chat),
        stop=chat.stop_sequences,
        token_limit=chat.token_limit,
        choices=chat.choices,
        web_search=search,
    )


def _spec(definition: FunctionDefinition, param: str) -> ToolSpec:
    if definition.parameters is not None:
        problem = schema_problem(definition.parameters)
        if problem is not None:
            raise invalid_request(
                f"Invalid JSON Schema for function {definition.name!r}: {problem}",
                param=f"{param}.parameters",
                code="invalid_function_parameters",
            )
    return ToolSpec(
        definition.name, definition.description or "", definition.parameters, bool(definition.strict)
    )


def _unique(tools: list[ToolSpec], param: str) -> tuple[ToolSpec, ...]:
    seen: set[str] = set()
    for index, tool in enumerate(tools):
        if tool.name in seen:
            raise invalid_request(
                f"Two tools are named {tool.name!r}; tool names must be unique.", param=f"{param}.{index}"
            )
        seen.add(tool.name)
    return tuple(tools)


def _tools(chat: ChatCompletionRequest) -> tuple[ToolSpec, ...]:
    specs = []
    for index, tool in enumerate(chat.tools or []):
        if isinstance(tool, CustomTool):
            raise invalid_request(
                "Custom (free-form input) tools are not supported by the relay's tool emulation; "
                "declare the tool as a function with a JSON Schema for its input.",
                param=f"tools.{index}",
                code="unsupported_tool_type",
            )
        specs.append(_spec(tool.function, f"tools.{index}.function"))
    return _unique(specs, "tools")


def _legacy_tools(chat: ChatCompletionRequest) -> tuple[ToolSpec, ...]:
    specs = [_spec(function, f"functions.{index}") for index, function in enumerate(chat.functions or [])]
    return _unique(specs, "functions")


def _known(name: str, tools: tuple[ToolSpec, ...], param: str) -> str:
    if not any(tool.name == name for tool in tools):
        raise invalid_request(f"No tool named {name!r} was given in the request.", param=param)
    return name


def _tool_choice(chat: ChatCompletionRequest, tools: tuple[ToolSpec, ...]) -> ToolChoice:
    choice = chat.tool_choice
    if not tools or choice == "none":
        return ToolChoice("none")
    if choice is None or choice == "auto":
        return ToolChoice("auto")
    if choice == "required":
        return ToolChoice("required")
    if isinstance(choice, NamedToolChoice):
        return ToolChoice("required", (_known(choice.function.name, tools, "tool_choice.function.name"),))
    if isinstance(choice, CustomToolChoice):
        raise invalid_request(
            "Custom tools are not supported.", param="tool_choice", code="unsupported_tool_type"
        )
    assert isinstance(choice, AllowedToolsChoice)
    names = []
    for index, allowed in enumerate(choice.allowed_tools.tools):
        function = allowed.get("function")
        name = function.get("name") if isinstance(function, dict) else allowed.get("name")
        param = f"tool_choice.allowed_tools.tools.{index}"
        if not isinstance(name, str):
            raise invalid_request("Each allowed tool names a function.", param=param)
        names.append(_known(name, tools, param))
    return ToolChoice(choice.allowed_tools.mode, tuple(names))


def _legacy_choice(chat: ChatCompletionRequest, tools: tuple[ToolSpec, ...]) -> ToolChoice:
    call = chat.function_call
    if call == "none":
        return ToolChoice("none")
    if isinstance(call, NamedFunction):
        return ToolChoice("required", (_known(call.name, tools, "function_call.name"),))
    return ToolChoice("auto")


def _output_format(chat: ChatCompletionRequest) -> OutputFormat:
    wanted = chat.response_format
    if wanted is None or wanted.type == "text":
        return OutputFormat()
    if wanted.type == "json_object":
        return OutputFormat("json_object")
    spec = wanted.json_schema
    if spec is None:
        raise invalid_request(
            "response_format of type json_schema needs a 'json_schema' object.",
            param="response_format.json_schema",
            code="missing_required_parameter",
        )
    if spec.schema_ is not None:
        problem = schema_problem(spec.schema_)
        if problem is not None:
            raise invalid_request(
                f"Invalid JSON Schema: {problem}", param="response_format.json_schema.schema"
            )
    return OutputFormat("json_schema", spec.schema_, spec.name, spec.description, bool(spec.strict))


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
