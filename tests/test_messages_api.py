"""`POST /v1/messages` and `/v1/messages/count_tokens` end to end: the official anthropic SDK → relay →
simulator, over real sockets; every answer checked against Anthropic's OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import pytest

from onemin_relay.serving import BackgroundServer
from onemin_relay.simulator.answers import expected_answer
from onemin_relay.translate.tokens import count_tokens
from tests.harness import KEY_A, UNKNOWN_KEY, SimulatorHandle
from tests.openapi_schema import assert_matches_anthropic_schema

MODEL = "us.anthropic.claude-sonnet-4-6"


@pytest.fixture
def claude(relay_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=relay_url, api_key=KEY_A, max_retries=0) as sdk:
        yield sdk


def sent_prompt(sim: SimulatorHandle) -> str:
    """The prompt of the last chat call the relay made upstream."""
    calls = [r for r in sim.requests() if r["path"] == "/api/chat-with-ai"]
    prompt: str = calls[-1]["json"]["promptObject"]["prompt"]
    return prompt


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def raw_events(relay_url: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The stream as sent: (the `event:` name, its JSON data) in order."""
    events: list[tuple[str, dict[str, Any]]] = []
    name = ""
    with httpx.stream(
        "POST",
        f"{relay_url}/v1/messages",
        json={"model": MODEL, "max_tokens": 1000, **body, "stream": True},
        headers={"x-api-key": KEY_A, "anthropic-version": "2023-06-01"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    return events


# --- whole answers -----------------------------------------------------------------------------------


def test_create_answers_a_message(claude: anthropic.Anthropic, sim: SimulatorHandle) -> None:
    raw = claude.messages.with_raw_response.create(
        model=MODEL,
        max_tokens=1000,
        system="Be brief.",
        messages=user("Bonjour, ça va? 你好"),
        metadata={"user_id": "u-1"},
        extra_body={"temperature": 0.3, "top_k": 5},  # deprecated by Anthropic, still sent by older clients
    )
    assert_matches_anthropic_schema("Message", raw.http_response.json())
    message = raw.parse()
    prompt = sent_prompt(sim)
    assert prompt == "System: Be brief.\n\nUser: Bonjour, ça va? 你好"
    assert message.content[0].type == "text"
    assert message.content[0].text == expected_answer(prompt)
    assert (message.role, message.model, message.stop_reason) == ("assistant", MODEL, "end_turn")
    assert message.id.startswith("msg_")
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0
    assert raw.headers["x-onemin-credits"].isdigit()


def test_a_bearer_token_works_as_well(relay_url: str, sim: SimulatorHandle) -> None:
    with anthropic.Anthropic(base_url=relay_url, auth_token=KEY_A, max_retries=0) as sdk:
        message = sdk.messages.create(model=MODEL, max_tokens=100, messages=user("hi"))
    assert message.content[0].type == "text"
    assert message.content[0].text == expected_answer("hi")


def test_max_tokens_and_stop_sequences_cut_the_answer(claude: anthropic.Anthropic) -> None:
    cut = claude.messages.create(model=MODEL, max_tokens=3, messages=user("tell me more"))
    assert cut.stop_reason == "max_tokens"
    assert cut.content[0].type == "text"
    assert count_tokens(cut.content[0].text) == 3
    answer = expected_answer("stop me")
    stop = answer[10:14]
    stopped = claude.messages.create(
        model=MODEL, max_tokens=1000, messages=user("stop me"), stop_sequences=[stop]
    )
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", stop)
    assert stopped.content[0].type == "text"
    assert stopped.content[0].text == answer[: answer.index(stop)]


WEATHER: Any = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def call(name: str, **arguments: Any) -> str:
    """What a model writes to call a tool under the core's emulation (docs/tools.md)."""
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def test_a_tool_use_loop(claude: anthropic.Anthropic, sim: SimulatorHandle) -> None:
    sim.queue_answers(call("get_weather", city="Paris"))
    asked: Any = [{"role": "user", "content": "Weather in Paris?"}]
    raw = claude.messages.with_raw_response.create(
        model=MODEL, max_tokens=1000, tools=[WEATHER], messages=asked
    )
    assert_matches_anthropic_schema("Message", raw.http_response.json())
    first = raw.parse()
    assert first.stop_reason == "tool_use"
    (use,) = [block for block in first.content if block.type == "tool_use"]
    assert (use.name, use.input) == ("get_weather", {"city": "Paris"})
    assert use.id.startswith("toolu_")

    result: Any = {"type": "tool_result", "tool_use_id": use.id, "content": "18°C, sunny"}
    loop: Any = [
        *asked,
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {"role": "user", "content": [result]},
    ]
    answer = claude.messages.create(model=MODEL, max_tokens=1000, tools=[WEATHER], messages=loop)
    prompt = sent_prompt(sim)
    assert prompt.index("Weather in Paris?") < prompt.rindex('"Paris"') < prompt.index("18°C, sunny")
    assert answer.stop_reason == "end_turn"
    assert answer.content[0].type == "text"
    assert answer.content[0].text == expected_answer(prompt)


def test_tool_choice_tool_forces_that_tool(claude: anthropic.Anthropic, sim: SimulatorHandle) -> None:
    sim.queue_answers("I'd rather chat.", call("get_weather", city="Oslo"))
    message = claude.messages.create(
        model=MODEL,
        max_tokens=1000,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=user("Weather in Oslo?"),
    )
    assert [(b.type, getattr(b, "input", None)) for b in message.content][-1] == (
        "tool_use",
        {"city": "Oslo"},
    )
    assert message.stop_reason == "tool_use"


def test_structured_output_from_output_config(claude: anthropic.Anthropic, sim: SimulatorHandle) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "celsius": {"type": "integer"}},
        "required": ["city", "celsius"],
        "additionalProperties": False,
    }
    sim.queue_answers('{"city": "Paris", "celsius": 18}')
    message = claude.messages.create(
        model=MODEL,
        max_tokens=1000,
        messages=user("Weather in Paris as JSON"),
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert message.content[0].type == "text"
    assert json.loads(message.content[0].text) == {"city": "Paris", "celsius": 18}


# --- streams -------------------------------------------------------------------------------------------


def test_stream_gives_the_text_and_the_final_message(
    claude: anthropic.Anthropic, sim: SimulatorHandle
) -> None:
    with claude.messages.stream(
        model=MODEL, max_tokens=1000, messages=user("stream me, s'il te plaît")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == expected_answer(sent_prompt(sim))
    assert final.content[0].type == "text"
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert final.usage.input_tokens > 0


def test_a_streamed_tool_call(claude: anthropic.Anthropic, relay_url: str, sim: SimulatorHandle) -> None:
    sim.queue_answers(call("get_weather", city="Paris"))
    with claude.messages.stream(
        model=MODEL, max_tokens=1000, tools=[WEATHER], messages=user("Weather in Paris?")
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    (use,) = [block for block in final.content if block.type == "tool_use"]
    assert (use.name, use.input) == ("get_weather", {"city": "Paris"})
    sim.queue_answers(call("get_weather", city="Rome"))
    events = raw_events(relay_url, {"tools": [WEATHER], "messages": user("Weather in Rome?")})
    for _, data in events:
        assert_matches_anthropic_schema("MessageStreamEvent", data)
    started = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert started[-1]["type"] == "tool_use"
    pieces = [
        d["delta"]["partial_json"]
        for n, d in events
        if n == "content_block_delta" and "partial_json" in d["delta"]
    ]
    assert json.loads("".join(pieces)) == {"city": "Rome"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_the_stream_is_anthropics_event_sequence(relay_url: str) -> None:
    events = raw_events(relay_url, {"messages": user("events [[sim:length=100]]")})
    assert all(name == data["type"] for name, data in events)  # each `event:` line names its data
    names = [name for name, _ in events]
    assert names[0] == "message_start"
    assert names[1] == "content_block_start"
    assert set(names[2:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    for _, data in events:
        assert_matches_anthropic_schema("MessageStreamEvent", data)
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"


def test_keepalives_are_pings(start_relay: Callable[..., BackgroundServer]) -> None:
    relay = start_relay(stream_keepalive_seconds=0.05)
    events = raw_events(relay.url, {"messages": user("slow [[sim:slow-first-byte=1500]]")})
    names = [name for name, _ in events]
    assert "ping" in names
    assert names[-1] == "message_stop"


def test_a_failure_mid_stream_is_an_error_event(claude: anthropic.Anthropic, relay_url: str) -> None:
    prompt = "x [[sim:error-mid-stream]] [[sim:length=200]]"
    events = raw_events(relay_url, {"messages": user(prompt)})
    name, data = events[-1]
    assert name == "error"
    assert data["type"] == "error"
    assert data["error"]["type"] == "api_error"
    assert "message_stop" not in [name for name, _ in events]
    with (
        pytest.raises(anthropic.APIStatusError),
        claude.messages.stream(model=MODEL, max_tokens=1000, messages=user(prompt)) as stream,
    ):
        stream.until_done()


# --- count_tokens ----------------------------------------------------------------------------------------


def test_count_tokens_counts_the_prompt_the_core_sends(
    claude: anthropic.Anthropic, sim: SimulatorHandle
) -> None:
    messages: Any = [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": [{"type": "text", "text": "How many tokens is this?"}]},
    ]
    counted = claude.messages.count_tokens(
        model=MODEL, system="Be brief.", messages=messages, tools=[WEATHER]
    )
    assert not [r for r in sim.requests() if r["path"] == "/api/chat-with-ai"]  # nothing generated
    claude.messages.create(model=MODEL, max_tokens=10, system="Be brief.", messages=messages, tools=[WEATHER])
    assert "get_weather" in sent_prompt(sim)  # the tools' instructions are counted too
    assert counted.input_tokens == count_tokens(sent_prompt(sim))


# --- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("http-429=3", anthropic.RateLimitError, 429),
        ("http-503", anthropic.OverloadedError, 529),
        ("insufficient-credits", anthropic.PaymentRequiredError, 402),
        ("http-500", anthropic.InternalServerError, 500),
        ("failed-status", anthropic.InternalServerError, 500),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_failures_are_anthropic_errors(
    claude: anthropic.Anthropic,
    sim: SimulatorHandle,
    fault: str,
    error: type[anthropic.APIStatusError],
    status: int,
    stream: bool,
) -> None:
    def ask() -> None:
        if stream:
            with claude.messages.stream(model=MODEL, max_tokens=100, messages=user("x")) as events:
                events.until_done()
        else:
            claude.messages.create(model=MODEL, max_tokens=100, messages=user("x"))

    sim.set_fault(fault)
    with pytest.raises(error) as caught:
        ask()
    assert caught.value.status_code == status
    assert_matches_anthropic_schema("ErrorResponse", caught.value.body)


def test_unknown_key_unknown_model_and_bad_requests(relay_url: str, claude: anthropic.Anthropic) -> None:
    with (
        anthropic.Anthropic(base_url=relay_url, api_key=UNKNOWN_KEY, max_retries=0) as stranger,
        pytest.raises(anthropic.AuthenticationError) as rejected,
    ):
        stranger.messages.create(model=MODEL, max_tokens=10, messages=user("x"))
    assert UNKNOWN_KEY not in str(rejected.value.body)
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="claude-nonexistent-1", max_tokens=10, messages=user("x"))
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        claude.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "system", "content": "x"}])
    assert "messages.0.role" in bad.value.message


def test_relay_refusals_are_anthropic_shaped_too(
    relay_url: str, start_relay: Callable[..., BackgroundServer]
) -> None:
    missing_key = httpx.post(f"{relay_url}/v1/messages", json={})
    assert missing_key.status_code == 401
    assert missing_key.json()["error"]["type"] == "authentication_error"
    assert_matches_anthropic_schema("ErrorResponse", missing_key.json())
    unparsable = httpx.post(f"{relay_url}/v1/messages", headers={"x-api-key": KEY_A}, content=b"{")
    assert unparsable.json()["error"]["type"] == "invalid_request_error"
    relay = start_relay(max_request_bytes=1000, rate_limit="2/minute")
    with anthropic.Anthropic(base_url=relay.url, api_key=KEY_A, max_retries=0) as sdk:
        with pytest.raises(anthropic.ContentTooLargeError):
            sdk.messages.create(model=MODEL, max_tokens=10, messages=user("x" * 2000))
        sdk.messages.count_tokens(model=MODEL, messages=user("x"))
        with pytest.raises(anthropic.RateLimitError) as limited:
            sdk.messages.count_tokens(model=MODEL, messages=user("x"))
    assert limited.value.response.headers["retry-after"].isdigit()
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_a_request_shaped_like_claude_codes(relay_url: str, sim: SimulatorHandle) -> None:
    """What Claude Code sends through ANTHROPIC_BASE_URL: `?beta=true`, beta headers, cache_control marks,
    thinking, metadata, a system prompt in blocks, its tools; streamed."""
    sim.queue_answers(call("Read", file_path="/tmp/a.txt"))
    body = {
        "model": MODEL,
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Use tools when they help."},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                    {"type": "text", "text": "Read /tmp/a.txt", "cache_control": {"type": "ephemeral"}},
                ],
            }
        ],
        "tools": [
            {
                "name": "Read",
                "description": "Reads a file",
                "input_schema": {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {"file_path": {"type": "string"}},
                    "required": ["file_path"],
                    "additionalProperties": False,
                },
            }
        ],
        "metadata": {"user_id": "user_abc_account__session_123"},
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "temperature": 1,
    }
    headers = {
        "Authorization": f"Bearer {KEY_A}",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
        "x-app": "cli",
    }
    with httpx.stream(
        "POST", f"{relay_url}/v1/messages?beta=true", json=body, headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        data = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    tool_uses = [d["content_block"] for d in data if d["type"] == "content_block_start"]
    assert tool_uses[-1]["name"] == "Read"
    pieces = [
        d["delta"]["partial_json"] for d in data if d.get("delta", {}).get("type") == "input_json_delta"
    ]
    assert json.loads("".join(pieces)) == {"file_path": "/tmp/a.txt"}
    assert data[-1]["type"] == "message_stop"
    assert "You are Claude Code." in sent_prompt(sim)
