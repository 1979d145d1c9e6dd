"""Unit tests of the Anthropic Messages translation: request → CoreRequest, CoreResult/events → wire."""

from __future__ import annotations

import json
from typing import Any

import pytest

from onemin_relay.core.types import (
    ChoiceDone,
    ChoiceOut,
    CoreEvent,
    CoreResult,
    KeepAlive,
    StreamFailure,
    StreamUsage,
    TextDelta,
    ToolCallDelta,
    ToolCallOut,
    ToolCallStart,
    ToolChoice,
    Usage,
)
from onemin_relay.errors import OpenAIError
from onemin_relay.translate import chat_wire as wire
from onemin_relay.translate.messages import MessageStream, core_request, message_object
from onemin_relay.translate.messages_wire import CountTokensRequest, MessagesRequest, parse_messages_request


def parse(**body: Any) -> MessagesRequest:
    return parse_messages_request({"model": "claude-sonnet-4-5", "max_tokens": 100, **body})


def bad(**body: Any) -> OpenAIError:
    with pytest.raises(OpenAIError) as caught:
        core_request(parse(**body))
    assert caught.value.status == 400
    return caught.value


HI = [{"role": "user", "content": "hi"}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


# --- request validation ----------------------------------------------------------------------------


def test_max_tokens_is_required_as_anthropic_requires() -> None:
    with pytest.raises(OpenAIError) as caught:
        parse_messages_request({"model": "claude-sonnet-4-5", "messages": HI})
    assert caught.value.param == "max_tokens"
    assert caught.value.code == "missing_required_parameter"
    # count_tokens takes none
    assert parse_messages_request({"model": "m", "messages": HI}, CountTokensRequest).messages


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": "10"}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "messages.0.content.0"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages.0.content.0.text"),
        ({"stream": "yes"}, "stream"),
        ({"temperature": 1.5}, "temperature"),
        ({"tools": [{"name": "has space", "input_schema": {}}]}, "tools.0.name"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({"stop_sequences": ["x"] * 17}, "stop_sequences"),
    ],
)
def test_bad_requests_are_400s_naming_the_param(body: dict[str, Any], param: str) -> None:
    with pytest.raises(OpenAIError) as caught:
        parse_messages_request({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": HI, **body})
    assert caught.value.status == 400
    assert caught.value.param == param


def test_ignored_settings_and_unknown_fields_are_accepted() -> None:
    request = parse(
        messages=HI,
        temperature=0.2,
        top_p=0.9,
        top_k=5,
        thinking={"type": "enabled", "budget_tokens": 2048},
        metadata={"user_id": "u-1"},
        service_tier="auto",
        container=None,
    )
    core = core_request(request)
    assert core.token_limit == 100
    assert core.model == "claude-sonnet-4-5"


# --- transcript ----------------------------------------------------------------------------------


def test_system_text_blocks_and_turns_become_chat_messages() -> None:
    core = core_request(
        parse(
            system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
            messages=[
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": [{"type": "text", "text": "Hi!"}]},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
            ],
            stop_sequences=["END", ""],
        )
    )
    assert [(m.role, m.content) for m in core.messages[:3]] == [
        ("system", "Be brief.\n\nBe kind."),
        ("user", "Hello"),
        ("assistant", "Hi!"),
    ]
    assert core.messages[3].content == [wire.TextPart(type="text", text="Weather?")]
    assert core.stop == ("END",)
    assert core.choices == 1
    assert core.param_prefix == "messages"


def test_tool_use_and_tool_result_become_tool_calls_and_tool_messages() -> None:
    core = core_request(
        parse(
            tools=[WEATHER],
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                        {"type": "text", "text": "Let me look."},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
                        {"type": "text", "text": "And tomorrow?"},
                    ],
                },
            ],
        )
    )
    assistant, result, user = core.messages[1:]
    assert assistant.content == "Let me look."
    assert assistant.tool_calls == [
        wire.ToolCall(
            id="toolu_1", function=wire.FunctionCall(name="get_weather", arguments='{"city":"Paris"}')
        )
    ]
    assert (result.role, result.tool_call_id) == ("tool", "toolu_1")
    assert result.content == [wire.TextPart(type="text", text="18°C")]
    assert (user.role, user.content) == ("user", [wire.TextPart(type="text", text="And tomorrow?")])
    assert [tool.name for tool in core.tools] == ["get_weather"]
    assert core.tools[0].parameters == WEATHER["input_schema"]
    assert core.tool_choice == ToolChoice("auto")


def test_an_error_tool_result_says_so() -> None:
    core = core_request(
        parse(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "is_error": True,
                            "content": [{"type": "text", "text": "city not found"}],
                        }
                    ],
                }
            ]
        )
    )
    texts = [part.text for part in core.messages[0].content or [] if isinstance(part, wire.TextPart)]
    assert texts == ["(the tool reported an error)", "city not found"]


def test_images_and_documents_become_image_and_file_parts() -> None:
    core = core_request(
        parse(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                        {"type": "image", "source": {"type": "file", "file_id": "file-abc"}},
                        {
                            "type": "document",
                            "title": "Report",
                            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                        },
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
                        },
                        {"type": "document", "source": {"type": "content", "content": "inline"}},
                        {"type": "document", "source": {"type": "file", "file_id": "file-doc"}},
                    ],
                }
            ]
        )
    )
    parts = core.messages[0].content
    assert isinstance(parts, list)
    assert parts[0] == wire.ImagePart(
        type="image_url", image_url=wire.ImageURL(url="data:image/png;base64,AAAA")
    )
    assert parts[1] == wire.ImagePart(
        type="image_url", image_url=wire.ImageURL(url="https://example.com/a.png")
    )
    assert parts[2] == wire.FilePart(type="file", file=wire.FileRef(file_id="file-abc"))
    assert parts[3] == wire.TextPart(type="text", text="Report")
    assert parts[4] == wire.FilePart(
        type="file", file=wire.FileRef(file_data="JVBERi0=", filename="document.pdf")
    )
    assert parts[5:7] == [wire.TextPart(type="text", text="notes"), wire.TextPart(type="text", text="inline")]
    assert parts[7] == wire.FilePart(type="file", file=wire.FileRef(file_id="file-doc"))


@pytest.mark.parametrize(
    ("block", "param"),
    [
        (
            {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}},
            "messages.0.content.0.source.url",
        ),
        (
            {"type": "document", "source": {"type": "base64", "media_type": "text/html", "data": "AA"}},
            "messages.0.content.0.source.media_type",
        ),
        (
            {"type": "image", "source": {"type": "base64", "media_type": "text/plain", "data": "AA"}},
            "messages.0.content.0.source.media_type",
        ),
        ({"type": "tool_use", "id": "t", "name": "n", "input": {}}, "messages.0.content.0"),
    ],
)
def test_content_1min_cannot_take_is_refused_by_name(block: dict[str, Any], param: str) -> None:
    assert bad(messages=[{"role": "user", "content": [block]}]).param == param


def test_tool_results_in_an_assistant_turn_are_refused() -> None:
    error = bad(
        messages=[
            {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}]}
        ]
    )
    assert error.param == "messages.0.content.0"


# --- tools, tool_choice, output format -------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, ToolChoice("auto"), True),
        ({"type": "auto", "disable_parallel_tool_use": True}, ToolChoice("auto"), False),
        ({"type": "any"}, ToolChoice("required"), True),
        ({"type": "tool", "name": "get_weather"}, ToolChoice("required", ("get_weather",)), True),
        ({"type": "none"}, ToolChoice("none"), True),
    ],
)
def test_tool_choice_maps_to_the_core(choice: dict[str, Any], expected: ToolChoice, parallel: bool) -> None:
    core = core_request(parse(messages=HI, tools=[WEATHER], tool_choice=choice))
    assert core.tool_choice == expected
    assert core.parallel_tool_calls is parallel


def test_tool_choice_must_name_a_listed_tool() -> None:
    assert bad(messages=HI, tools=[WEATHER], tool_choice={"type": "tool", "name": "other"}).param == (
        "tool_choice.name"
    )


def test_web_search_server_tool_turns_on_web_search_and_other_server_tools_are_refused() -> None:
    core = core_request(
        parse(messages=HI, tools=[{"type": "web_search_20250305", "name": "web_search"}, WEATHER])
    )
    assert core.web_search == "medium"
    assert [tool.name for tool in core.tools] == ["get_weather"]
    error = bad(messages=HI, tools=[{"type": "bash_20250124", "name": "bash"}])
    assert (error.param, error.code) == ("tools.0.type", "unsupported_tool")
    assert bad(messages=HI, tools=[{"name": "x"}]).param == "tools.0.input_schema"


def test_output_config_json_schema_is_a_strict_json_schema_output() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    core = core_request(
        parse(messages=HI, output_config={"format": {"type": "json_schema", "schema": schema}})
    )
    assert (core.output.kind, core.output.schema, core.output.strict) == ("json_schema", schema, True)
    assert core_request(parse(messages=HI)).output.kind == "text"


# --- whole answers ---------------------------------------------------------------------------------


def result(choice: ChoiceOut) -> CoreResult:
    return CoreResult(choices=(choice,), usage=Usage(12, 5), credits=3, record_id="1234-abcd")


@pytest.mark.parametrize(
    ("finish", "stop_sequence", "reason"),
    [
        ("stop", None, "end_turn"),
        ("stop", "END", "stop_sequence"),
        ("length", None, "max_tokens"),
        ("tool_calls", None, "tool_use"),
        ("content_filter", None, "refusal"),
    ],
)
def test_finish_reasons_become_stop_reasons(finish: Any, stop_sequence: str | None, reason: str) -> None:
    message = message_object(result(ChoiceOut("Hi", (), finish, stop_sequence)), "claude-x")
    assert (message["stop_reason"], message["stop_sequence"]) == (reason, stop_sequence)


def test_a_text_answer_is_a_message_with_one_text_block() -> None:
    message = message_object(result(ChoiceOut("Hello!", (), "stop")), "claude-sonnet-4-5")
    assert message["id"] == "msg_1234abcd"
    assert (message["type"], message["role"], message["model"]) == (
        "message",
        "assistant",
        "claude-sonnet-4-5",
    )
    assert message["content"] == [{"type": "text", "text": "Hello!", "citations": None}]
    assert (message["usage"]["input_tokens"], message["usage"]["output_tokens"]) == (12, 5)


def test_tool_calls_are_tool_use_blocks_after_the_text() -> None:
    calls = (ToolCallOut("call_abc", "get_weather", '{"city":"Paris"}'), ToolCallOut("call_def", "noop", ""))
    message = message_object(result(ChoiceOut("Checking.", calls, "tool_calls")), "m")
    assert [block["type"] for block in message["content"]] == ["text", "tool_use", "tool_use"]
    assert message["content"][1] == {
        "type": "tool_use",
        "id": "toolu_abc",
        "name": "get_weather",
        "input": {"city": "Paris"},
        "caller": {"type": "direct"},
    }
    assert message["content"][2]["input"] == {}
    only_calls = message_object(result(ChoiceOut(None, calls[:1], "tool_calls")), "m")
    assert [block["type"] for block in only_calls["content"]] == ["tool_use"]


# --- streams -----------------------------------------------------------------------------------------


def run(events: list[CoreEvent]) -> list[dict[str, Any]]:
    stream = MessageStream("claude-x", message_id="msg_1")
    out = stream.start()
    for event in events:
        out += stream.feed(event)
    return out + stream.finish()


def test_a_text_stream_is_anthropics_event_sequence() -> None:
    out = run(
        [
            KeepAlive(),
            TextDelta(0, "Hel"),
            TextDelta(0, "lo"),
            ChoiceDone(0, "stop", "END"),
            StreamUsage(Usage(7, 2), 1),
        ]
    )
    assert [event["type"] for event in out] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert out[0]["message"]["id"] == "msg_1"
    assert out[0]["message"]["content"] == []
    assert out[3]["delta"] == {"type": "text_delta", "text": "Hel"}
    assert out[6]["delta"]["stop_reason"] == "stop_sequence"
    assert out[6]["delta"]["stop_sequence"] == "END"
    assert (out[6]["usage"]["input_tokens"], out[6]["usage"]["output_tokens"]) == (7, 2)


def test_a_tool_call_stream_has_a_tool_use_block_with_input_json_deltas() -> None:
    out = run(
        [
            TextDelta(0, "Checking."),
            ToolCallStart(0, 0, "call_1", "get_weather"),
            ToolCallDelta(0, 0, '{"city":'),
            ToolCallDelta(0, 0, '"Paris"}'),
            ChoiceDone(0, "tool_calls"),
            StreamUsage(Usage(7, 9), 1),
        ]
    )
    starts = [event for event in out if event["type"] == "content_block_start"]
    assert [start["index"] for start in starts] == [0, 1]
    assert starts[1]["content_block"]["type"] == "tool_use"
    assert starts[1]["content_block"]["id"] == "toolu_1"
    pieces = [e["delta"]["partial_json"] for e in out if e.get("delta", {}).get("type") == "input_json_delta"]
    assert json.loads("".join(pieces)) == {"city": "Paris"}
    assert [e["index"] for e in out if e["type"] == "content_block_stop"] == [0, 1]
    assert next(e for e in out if e["type"] == "message_delta")["delta"]["stop_reason"] == "tool_use"


def test_an_empty_answer_still_has_its_text_block() -> None:
    out = run([ChoiceDone(0, "stop"), StreamUsage(Usage(3, 0), 0)])
    assert [event["type"] for event in out][1:4] == [
        "content_block_start",
        "content_block_stop",
        "message_delta",
    ]


def test_a_failure_mid_stream_is_an_anthropic_error_event_and_the_end() -> None:
    failure = StreamFailure(OpenAIError(503, "1min.ai is temporarily unavailable"))
    out = run([TextDelta(0, "Hel"), failure, TextDelta(0, "lo")])
    assert out[-1]["type"] == "error"
    assert out[-1]["error"] == {"type": "overloaded_error", "message": "1min.ai is temporarily unavailable"}
    assert not any(event["type"] == "message_stop" for event in out)
