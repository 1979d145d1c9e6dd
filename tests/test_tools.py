"""Tool calls in `POST /v1/chat/completions`, end to end: the official SDK against the relay, the simulator
playing a model that writes calls (`sim.queue_answers`), stream and not."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from onemin_relay.simulator.limits import estimate_tokens
from tests.harness import KEY_A, SimulatorHandle

MODEL = "gpt-4o-mini"
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
TIME: Any = {
    "type": "function",
    "function": {"name": "get_time", "description": "The time now.", "parameters": {"type": "object"}},
}
TOOLS: Any = [WEATHER, TIME]
ASK: Any = [{"role": "user", "content": "Weather in Paris?"}]


def call(name: str, **arguments: Any) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def called(message: Any) -> list[tuple[str, Any]]:
    """(name, parsed arguments) of each tool call in an SDK message."""
    return [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []]


def prompts(sim: SimulatorHandle) -> list[str]:
    return [r["json"]["promptObject"]["prompt"] for r in sim.requests() if r["path"] == "/api/chat-with-ai"]


def test_a_call_becomes_openais_tool_calls(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers(call("get_weather", city="Paris"))
    completion = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert called(choice.message) == [("get_weather", {"city": "Paris"})]
    [tool_call] = choice.message.tool_calls or []
    assert tool_call.id.startswith("call_")
    assert tool_call.type == "function"
    [prompt] = prompts(sim)
    assert '- get_weather(city: string (City name), unit?: "c" | "f"): Current weather in a city.' in prompt
    assert prompt.endswith("User: Weather in Paris?")


def test_prose_around_calls_and_parallel_calls(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    answer = f"Let me look.\n{call('get_weather', city='Paris')}\n{call('get_time')}"
    sim.queue_answers(answer, answer)
    completion = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS)
    message = completion.choices[0].message
    assert message.content == "Let me look."
    assert called(message) == [("get_weather", {"city": "Paris"}), ("get_time", {})]
    assert len({c.id for c in message.tool_calls or []}) == 2
    single = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, parallel_tool_calls=False)
    assert called(single.choices[0].message) == [("get_weather", {"city": "Paris"})]


def test_plain_text_stays_a_message(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers("It is sunny {not json} [1].")
    completion = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "It is sunny {not json} [1]."
    assert completion.choices[0].message.tool_calls is None


def test_a_malformed_call_is_repaired_once_and_usage_counts_both_calls(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    sim.queue_answers(call("get_weather", town="Paris"), call("get_weather", city="Paris"))
    completion = client.chat.completions.with_raw_response.create(model=MODEL, messages=ASK, tools=TOOLS)
    parsed = completion.parse()
    assert called(parsed.choices[0].message) == [("get_weather", {"city": "Paris"})]
    first, repair = prompts(sim)
    assert repair.startswith(first)
    assert "'city' is a required property" in repair
    assert parsed.usage is not None
    assert parsed.usage.prompt_tokens > 0
    assert int(completion.headers["x-onemin-credits"]) > 0


@pytest.mark.parametrize(
    "bad",
    [
        call("get_wether", city="Paris"),
        '<tool_call>{"name": "get_weather", "arguments": {city: Paris}}</tool_call>',
        call("get_weather", city=3),
    ],
    ids=["unknown-tool", "bad-json", "schema"],
)
def test_auto_gives_the_text_when_the_repair_fails_too(
    client: openai.OpenAI, sim: SimulatorHandle, bad: str
) -> None:
    sim.queue_answers(bad, bad)
    completion = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS)
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].message.content == bad
    assert len(prompts(sim)) == 2


def test_required_fails_loudly_when_no_call_comes(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers("I think it is sunny.", "Still no call.")
    retrying = client.with_options(max_retries=2)  # the SDK's default
    with pytest.raises(openai.APIStatusError) as raised:
        retrying.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, tool_choice="required")
    assert raised.value.status_code == 502
    assert raised.value.code == "invalid_tool_call"
    # The SDK did not retry on its own (a retry is billed again): one call and its one repair.
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert len(prompts(sim)) == 2


def test_a_named_function_is_the_only_one_offered(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers("no call", call("get_time"))
    completion = client.chat.completions.create(
        model=MODEL,
        messages=ASK,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert called(completion.choices[0].message) == [("get_time", {})]
    first = prompts(sim)[0]
    assert "get_time" in first
    assert "get_weather" not in first
    assert "You must call the tool get_time now." in first


def test_tool_choice_none_offers_nothing(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers(call("get_weather", city="Paris"))
    completion = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, tool_choice="none")
    assert completion.choices[0].message.tool_calls is None
    assert "<tool_call>" not in prompts(sim)[0]


def test_legacy_functions_get_function_call(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers(call("get_weather", city="Paris"))
    completion = client.chat.completions.create(
        model=MODEL, messages=ASK, functions=[WEATHER["function"]], function_call="auto"
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.function_call is not None
    assert choice.message.function_call.name == "get_weather"
    assert choice.message.tool_calls is None


def test_an_agent_loop_runs_through_the_relay(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers(call("get_weather", city="Paris"), "It is 18 °C in Paris.")
    messages: list[Any] = list(ASK)
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    [tool_call] = first.choices[0].message.tool_calls or []
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": tool_call.id, "content": "18 °C"})
    final = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert final.choices[0].message.content == "It is 18 °C in Paris."
    second = prompts(sim)[1]
    # the model sees its own call in the format it is told to write, and the result named after the tool
    assert f"Assistant: {call('get_weather', city='Paris')}" in second
    assert "Tool result (get_weather): 18 °C" in second


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": [{"type": "custom", "custom": {"name": "shell"}}]}, "tools.0"),
        ({"tools": [WEATHER, WEATHER]}, "tools.1"),
        (
            {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice.function.name",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "x", "parameters": {"type": 5}}}]},
            "tools.0.function.parameters",
        ),
        ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools.0.function.name"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        (
            {
                "tools": [
                    {"type": "function", "function": {"name": "x", "parameters": {"enum": ["v" * 99] * 700}}}
                ]
            },
            "tools.0.function.parameters",
        ),
    ],
)
def test_tools_it_cannot_honour_are_400s(client: openai.OpenAI, body: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL, messages=ASK, **body)
    assert raised.value.param == param


# --- streaming ---------------------------------------------------------------------------------------


def streamed(client: openai.OpenAI, **body: Any) -> tuple[list[Any], Any]:
    """(the chunks, the completion the SDK's stream helper reassembles) of one streamed request."""
    with client.chat.completions.stream(model=MODEL, messages=ASK, **body) as stream:
        chunks = [event.chunk for event in stream if event.type == "chunk"]
        return chunks, stream.get_final_completion()


def test_a_streamed_call_reassembles_to_the_whole_answer(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    answer = f"Let me look.\n{call('get_weather', city='Paris')}\n{call('get_time')}"
    sim.queue_answers(answer, answer)
    whole = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS)
    chunks, final = streamed(client, tools=TOOLS, stream_options={"include_usage": True})
    got, expected = final.choices[0].message, whole.choices[0].message
    assert got.content == expected.content == "Let me look."
    assert called(got) == called(expected)
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None
    assert final.usage.completion_tokens > 0
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    first_call = next(d.tool_calls[0] for d in deltas if d.tool_calls)
    assert (first_call.index, first_call.type) == (0, "function")
    assert first_call.id
    assert first_call.function is not None
    assert (first_call.function.name, first_call.function.arguments) == ("get_weather", "")


def test_prose_streams_before_the_answer_ends(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers("Plain prose with a {brace} and more words after it, long enough for many chunks.")
    chunks, final = streamed(client, tools=TOOLS)
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) > 2  # not one buffered piece
    assert final.choices[0].message.content == "".join(texts)
    assert final.choices[0].finish_reason == "stop"


def test_a_streamed_required_call_that_never_comes_is_an_error_event(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    sim.queue_answers("no", "still no")
    with pytest.raises(openai.APIError, match="TOOL_REPAIR_ATTEMPTS"):
        streamed(client, tools=TOOLS, tool_choice="required")


def test_a_streamed_repair_gives_the_repaired_call(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers("Checking. " + call("get_weather"), call("get_weather", city="Paris"))
    _, final = streamed(client, tools=TOOLS)
    message = final.choices[0].message
    assert message.content == "Checking."
    assert called(message) == [("get_weather", {"city": "Paris"})]


def test_legacy_function_call_streams(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers(call("get_weather", city="Paris"))
    stream = client.chat.completions.create(
        model=MODEL, messages=ASK, functions=[WEATHER["function"]], stream=True
    )
    chunks = [c for c in stream if c.choices]
    assert chunks[-1].choices[0].finish_reason == "function_call"
    name = "".join(
        c.choices[0].delta.function_call.name or "" for c in chunks if c.choices[0].delta.function_call
    )
    arguments = "".join(
        c.choices[0].delta.function_call.arguments or "" for c in chunks if c.choices[0].delta.function_call
    )
    assert (name, json.loads(arguments)) == ("get_weather", {"city": "Paris"})


def test_every_choice_gets_its_calls(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers(call("get_weather", city="Paris"), call("get_weather", city="Paris"))
    completion = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, n=2)
    assert [called(choice.message) for choice in completion.choices] == [
        [("get_weather", {"city": "Paris"})]
    ] * 2
    ids = [choice.message.tool_calls[0].id for choice in completion.choices if choice.message.tool_calls]
    assert len(set(ids)) == 2


def test_a_repair_in_a_stream_keeps_it_alive_and_counts_both_calls(
    start_relay: Any, sim: SimulatorHandle
) -> None:
    relay = start_relay(stream_keepalive_seconds=0.05)
    # the first answer is malformed (no city); the repair prompt repeats it, so its magic word makes
    # the repair call slow to answer
    first_answer = call("get_weather") + " [[sim:slow-first-byte=400]]"
    sim.queue_answers(first_answer, call("get_weather", city="Paris"))
    body = {"model": MODEL, "messages": ASK, "tools": TOOLS, "stream": True}
    body["stream_options"] = {"include_usage": True}
    with httpx.stream(
        "POST", f"{relay.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY_A}"}
    ) as response:
        lines = list(response.iter_lines())
    comments = [line for line in lines if line.startswith(":")]
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    assert comments  # keep-alives while the repair call was slow
    arguments = "".join(
        tc["function"].get("arguments", "")
        for e in events
        if e["choices"]
        for tc in e["choices"][0]["delta"].get("tool_calls", [])
    )
    assert json.loads(arguments) == {"city": "Paris"}
    first, repair = prompts(sim)
    usage = events[-1]["usage"]
    assert usage["prompt_tokens"] == estimate_tokens(first) + estimate_tokens(repair)
    assert usage["completion_tokens"] == estimate_tokens(first_answer) + estimate_tokens(
        call("get_weather", city="Paris")
    )
