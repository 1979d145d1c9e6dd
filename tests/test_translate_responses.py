"""The Responses translation, pure: wire request → core request, core result/events → Responses objects
and events (checked against OpenAI's own schemas), and what is stored of a response."""

from __future__ import annotations

from typing import Any

import pytest

from onemin_relay.core.types import (
    ChoiceDone,
    ChoiceOut,
    CoreEvent,
    OutputFormat,
    StreamFailure,
    StreamUsage,
    TextDelta,
    ToolCallDelta,
    ToolCallOut,
    ToolCallStart,
    ToolChoice,
    ToolSpec,
    Usage,
)
from onemin_relay.errors import OpenAIError
from onemin_relay.translate.chat_wire import FilePart, ImagePart, Message, TextPart
from onemin_relay.translate.responses import (
    core_request,
    output_items,
    request_echo,
    response_object,
    stored_input_items,
    stored_items,
)
from onemin_relay.translate.responses_stream import ResponseEvents
from onemin_relay.translate.responses_wire import parse_response_request
from tests.openapi_schema import assert_matches_schema

# The schema of each streaming event, by its type.
EVENT_SCHEMAS = {
    "response.created": "ResponseCreatedEvent",
    "response.in_progress": "ResponseInProgressEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
    "response.failed": "ResponseFailedEvent",
    "error": "ResponseErrorEvent",
}


def parse(**body: Any) -> Any:
    return parse_response_request({"model": "gpt-4o-mini", **body})


def core(**body: Any) -> Any:
    return core_request(parse(**body)).core


def texts(message: Message) -> list[str]:
    assert isinstance(message.content, list)
    return [part.text for part in message.content if isinstance(part, TextPart)]


def rejected(**body: Any) -> OpenAIError:
    with pytest.raises(OpenAIError) as caught:
        core(**body)
    assert caught.value.status == 400
    return caught.value


# --- request → core ---


def test_a_string_input_is_one_user_message_and_instructions_come_first() -> None:
    request = core(input="Hello", instructions="Be brief.", max_output_tokens=50)
    assert [(m.role, m.content) for m in request.messages] == [("system", "Be brief."), ("user", "Hello")]
    assert request.token_limit == 50
    assert request.param_prefix == "input"
    assert request.model == "gpt-4o-mini"


def test_message_items_keep_roles_and_parts() -> None:
    request = core(
        input=[
            {"role": "developer", "content": "Answer in French."},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in these?"},
                    {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "low"},
                    {"type": "input_image", "file_id": "file-abc"},
                    {"type": "input_file", "file_id": "file-doc"},
                    {"type": "input_file", "file_data": "aGVsbG8=", "filename": "notes.txt"},
                ],
            },
        ]
    )
    developer, user = request.messages
    assert (developer.role, developer.content) == ("developer", "Answer in French.")
    assert user.role == "user"
    text, url_image, id_image, id_file, data_file = user.content
    assert isinstance(text, TextPart)
    assert text.text == "What is in these?"
    assert isinstance(url_image, ImagePart)
    assert (url_image.image_url.url, url_image.image_url.detail) == ("https://example.com/cat.png", "low")
    assert isinstance(id_image, FilePart)
    assert id_image.file.file_id == "file-abc"
    assert isinstance(id_file, FilePart)
    assert id_file.file.file_id == "file-doc"
    assert isinstance(data_file, FilePart)
    assert (data_file.file.file_data, data_file.file.filename) == ("aGVsbG8=", "notes.txt")


def test_calls_join_the_assistant_turn_and_outputs_become_tool_messages() -> None:
    request = core(
        input=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {
                "type": "message",
                "role": "assistant",
                "id": "msg_1",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}],
            },
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "weather",
                "arguments": '{"city":"Paris"}',
            },
            {"type": "function_call", "call_id": "call_2", "name": "weather", "arguments": '{"city":"Rome"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
            {"type": "function_call_output", "call_id": "call_2", "output": "24C"},
            {"type": "function_call", "call_id": "call_3", "name": "weather", "arguments": "{}"},
        ]
    )
    user, assistant, first, second, lone_call = request.messages
    assert user.role == "user"
    assert assistant.role == "assistant"
    assert texts(assistant) == ["Checking."]
    assert [(c.id, c.function.name, c.function.arguments) for c in assistant.tool_calls] == [
        ("call_1", "weather", '{"city":"Paris"}'),
        ("call_2", "weather", '{"city":"Rome"}'),
    ]
    assert [(m.role, m.tool_call_id, m.content) for m in (first, second)] == [
        ("tool", "call_1", "18C"),
        ("tool", "call_2", "24C"),
    ]
    assert (lone_call.role, lone_call.content, lone_call.tool_calls[0].id) == ("assistant", None, "call_3")


def test_history_comes_before_the_new_input() -> None:
    history = stored_items(
        [
            {
                "id": "msg_a",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Hi"}],
            },
            *output_items(ChoiceOut("Hello!", (), "stop")),
        ]
    )
    request = core_request(parse(input="And now?", instructions="Be kind."), history).core
    assert [m.role for m in request.messages] == ["system", "user", "assistant", "user"]
    assert texts(request.messages[2]) == ["Hello!"]


def test_tools_tool_choice_and_formats_map_to_the_core() -> None:
    weather = {
        "type": "function",
        "name": "weather",
        "description": "Weather now",
        "parameters": {"type": "object"},
    }
    request = core(input="x", tools=[weather, {"type": "web_search_preview", "search_context_size": "high"}])
    assert request.tools == (ToolSpec("weather", "Weather now", {"type": "object"}),)
    assert request.web_search == "high"
    assert request.tool_choice == ToolChoice()
    assert request.parallel_tool_calls is True

    named = core(input="x", tools=[weather], tool_choice={"type": "function", "name": "weather"})
    assert named.tool_choice == ToolChoice("required", ("weather",))
    allowed = core(
        input="x",
        tools=[weather],
        tool_choice={
            "type": "allowed_tools",
            "mode": "auto",
            "tools": [{"type": "function", "name": "weather"}],
        },
        parallel_tool_calls=False,
    )
    assert allowed.tool_choice == ToolChoice("auto", ("weather",))
    assert allowed.parallel_tool_calls is False
    assert core(input="x", tools=[weather], tool_choice="none").tool_choice == ToolChoice("none")
    assert core(input="x", tool_choice="required").tool_choice == ToolChoice("none")  # nothing to call
    assert core(input="x", tool_choice={"type": "web_search_preview"}).web_search == "medium"
    assert core(input="x", tools=[{"type": "web_search"}]).web_search == "medium"

    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    structured = core(
        input="x", text={"format": {"type": "json_schema", "name": "Thing", "schema": schema, "strict": True}}
    )
    assert structured.output == OutputFormat("json_schema", schema=schema, name="Thing", strict=True)
    assert core(input="x", text={"format": {"type": "json_object"}}).output == OutputFormat("json_object")
    assert core(input="x", text={"format": {"type": "text"}}).output == OutputFormat()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "input"),
        ({"input": "x", "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools.0.type"),
        ({"input": "x", "tools": [{"type": "code_interpreter"}]}, "tools.0.type"),
        ({"input": "x", "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice.name"),
        ({"input": "x", "tool_choice": {"type": "file_search"}}, "tool_choice.type"),
        ({"input": "x", "max_output_tokens": 8}, "max_output_tokens"),
        ({"input": "x", "background": True}, "background"),
        ({"input": "x", "conversation": "conv_1"}, "conversation"),
        ({"input": "x", "prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input.0.id"),
        ({"input": [{"type": "computer_call", "id": "cu_1"}]}, "input.0"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input.0.role"),
        ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input.0.content.0"),
        ({"input": [{"role": "user", "content": [{"type": "input_image"}]}]}, "input.0.content.0"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x/y.pdf"}]}]},
            "input.0.content.0.file_url",
        ),
        ({"input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
        ({"input": "x", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"input": "x", "tools": [{"type": "function", "name": "a b"}]}, "tools.0.name"),
        (
            {"input": "x", "tools": [{"type": "function", "name": "f"}, {"type": "function", "name": "f"}]},
            "tools.1.name",
        ),
        (
            {"input": "x", "tools": [{"type": "function", "name": "f", "parameters": {"type": "nope"}}]},
            "tools.0.parameters",
        ),
        (
            {"input": "x", "text": {"format": {"type": "json_schema", "name": "T", "schema": {"type": 3}}}},
            "text.format.schema",
        ),
    ],
)
def test_what_cannot_map_is_a_400_naming_the_param(body: dict[str, Any], param: str) -> None:
    assert rejected(**body).param == param


# --- core result → response object ---


def test_a_whole_answer_is_a_valid_response_object() -> None:
    request = parse(
        input="x",
        instructions="Be brief.",
        metadata={"team": "blue"},
        tools=[{"type": "function", "name": "weather", "parameters": {"type": "object"}}],
        text={"format": {"type": "json_object"}},
    )
    choice = ChoiceOut("Calling.", (ToolCallOut("call_1", "weather", '{"city":"Paris"}'),), "tool_calls")
    body = response_object(
        "resp_1",
        1_700_000_000,
        request_echo(request),
        status="completed",
        output=output_items(choice),
        usage=Usage(12, 5),
    )
    assert_matches_schema("Response", body)
    message, call = body["output"]
    assert message["content"][0]["text"] == "Calling."
    assert (call["type"], call["call_id"], call["name"], call["arguments"]) == (
        "function_call",
        "call_1",
        "weather",
        '{"city":"Paris"}',
    )
    assert call["id"].startswith("fc_")
    assert body["usage"]["total_tokens"] == 17
    assert (body["metadata"], body["instructions"], body["store"]) == ({"team": "blue"}, "Be brief.", True)
    assert body["text"]["format"] == {"type": "json_object"}


def test_a_call_only_answer_has_no_message_and_an_empty_one_has_an_empty_message() -> None:
    calls = output_items(ChoiceOut(None, (ToolCallOut("call_1", "f", "{}"),), "tool_calls"))
    assert [item["type"] for item in calls] == ["function_call"]
    empty = output_items(ChoiceOut("", (), "stop"))
    assert [(item["type"], item["content"][0]["text"]) for item in empty] == [("message", "")]


def test_a_cut_answer_is_incomplete_and_a_failure_carries_its_error() -> None:
    echo = request_echo(parse(input="x", max_output_tokens=16))
    cut = response_object(
        "resp_1",
        1,
        echo,
        status="incomplete",
        output=output_items(ChoiceOut("abc", (), "length")),
        incomplete_reason="max_output_tokens",
        usage=Usage(1, 16),
    )
    assert_matches_schema("Response", cut)
    assert cut["incomplete_details"] == {"reason": "max_output_tokens"}
    assert cut["output"][0]["status"] == "incomplete"

    failed = response_object("resp_2", 1, echo, status="failed", error=OpenAIError(502, "upstream broke"))
    assert_matches_schema("Response", failed)
    assert failed["error"] == {"code": "server_error", "message": "upstream broke"}
    limited = response_object("resp_3", 1, echo, status="failed", error=OpenAIError(429, "slow down"))
    assert limited["error"]["code"] == "rate_limit_exceeded"


# --- core events → streaming events ---


def render(events: list[CoreEvent], *, finish: bool = True) -> list[dict[str, Any]]:
    renderer = ResponseEvents("resp_1", 1_700_000_000, request_echo(parse(input="x")))
    out = renderer.start()
    for core_event in events:
        out += renderer.feed(core_event)
    if finish:
        out += renderer.finish()
    for event in out:
        assert_matches_schema(EVENT_SCHEMAS[event["type"]], event)
    assert [event["sequence_number"] for event in out] == list(range(len(out)))
    return out


def test_a_streamed_text_answer_has_the_sdk_event_sequence() -> None:
    out = render(
        [
            TextDelta(0, ""),
            TextDelta(0, "Hel"),
            TextDelta(0, "lo"),
            ChoiceDone(0, "stop"),
            StreamUsage(Usage(3, 2), 1),
        ]
    )
    assert [event["type"] for event in out] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert out[6]["text"] == "Hello"
    final = out[-1]["response"]
    assert final["status"] == "completed"
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["usage"]["total_tokens"] == 5
    assert out[0]["response"]["output"] == []
    assert out[0]["response"]["status"] == "in_progress"


def test_streamed_calls_after_text_close_the_message_first() -> None:
    out = render(
        [
            TextDelta(0, "Let me check."),
            ToolCallStart(0, 0, "call_1", "weather"),
            ToolCallDelta(0, 0, '{"city":'),
            ToolCallDelta(0, 0, '"Paris"}'),
            ToolCallStart(0, 1, "call_2", "time"),
            ToolCallDelta(0, 1, "{}"),
            ChoiceDone(0, "tool_calls"),
            StreamUsage(Usage(3, 2), 1),
        ]
    )
    kinds = [event["type"] for event in out]
    assert kinds[2:] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = [event for event in out if event["type"] == "response.function_call_arguments.done"]
    assert [(event["name"], event["arguments"], event["output_index"]) for event in done] == [
        ("weather", '{"city":"Paris"}', 1),
        ("time", "{}", 2),
    ]
    final = out[-1]["response"]["output"]
    assert [item["type"] for item in final] == ["message", "function_call", "function_call"]
    assert final[1]["call_id"] == "call_1"


def test_a_stream_cut_by_max_output_tokens_ends_incomplete() -> None:
    out = render([TextDelta(0, "abc"), ChoiceDone(0, "length"), StreamUsage(Usage(3, 16), 1)])
    assert out[-1]["type"] == "response.incomplete"
    assert out[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert out[-1]["response"]["output"][0]["status"] == "incomplete"


def test_an_empty_streamed_answer_is_still_one_message() -> None:
    out = render([TextDelta(0, ""), ChoiceDone(0, "stop")])
    assert out[-1]["response"]["output"][0]["content"][0]["text"] == ""
    assert "response.output_text.delta" not in [event["type"] for event in out]


def test_a_failure_mid_stream_is_an_error_event_then_response_failed() -> None:
    out = render(
        [TextDelta(0, "Par"), StreamFailure(OpenAIError(502, "upstream broke", code="upstream_error"))],
        finish=False,
    )
    error, failed = out[-2:]
    assert (error["type"], error["code"], error["message"]) == ("error", "upstream_error", "upstream broke")
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": "server_error", "message": "upstream broke"}


# --- stored items ---


def test_stored_input_items_list_as_openai_items_and_read_back_as_input() -> None:
    request = parse(
        input=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
            {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
        ]
    )
    stored = stored_input_items(request)
    page = {
        "object": "list",
        "data": stored,
        "first_id": stored[0]["id"],
        "last_id": stored[-1]["id"],
        "has_more": False,
    }
    assert_matches_schema("ResponseItemList", page)
    assert stored[1]["content"] == [
        {"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}
    ]
    again = core_request(parse(input="next"), stored_items(stored)).core
    assert [m.role for m in again.messages] == ["user", "assistant", "user", "assistant", "tool", "user"]


PARTS = [{"type": "input_text", "text": "y"}]


@pytest.mark.parametrize(
    ("core_param", "expected"),
    [
        ("input.1.content.0.image_url.url", "input.0.content.0.image_url"),
        ("messages.1.content.2.file.file_data", "input.0.content.2.file_data"),
        ("input.3.content.0.file.file_id", "input.3.output.0.file_id"),
        ("input.0.content", "instructions"),
        ("model", "model"),
        ("input.9.content.0", "input.9.content.0"),  # no such message: left as it is
    ],
)
def test_core_errors_name_the_responses_parameter(core_param: str, expected: str) -> None:
    # core messages: 0 instructions, 1 input.0, 2 the calls input.1 and input.2 as one turn, 3 input.3
    translated = core_request(
        parse(
            instructions="Be brief.",
            input=[
                {"role": "user", "content": [{"type": "input_text", "text": "x"}]},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{}"},
                {
                    "type": "function_call_output",
                    "call_id": "c1",
                    "output": [{"type": "input_text", "text": "y"}],
                },
            ],
        )
    )
    error = OpenAIError(400, "bad part", param=core_param, code="invalid_value", headers={"x": "1"})
    renamed = translated.renamed(error)
    assert renamed.param == expected
    assert (renamed.status, renamed.message, renamed.code, renamed.headers) == (
        400,
        "bad part",
        "invalid_value",
        {"x": "1"},
    )
