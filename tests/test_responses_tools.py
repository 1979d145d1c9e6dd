"""Function tools and structured output through `/v1/responses` with the official SDK, against a scripted
simulator: a tool round trip continued with `previous_response_id`, streamed calls, `responses.parse`."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.harness import SimulatorHandle

MODEL = "gpt-4o-mini"
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


class Weather(BaseModel):
    city: str
    celsius: int


def prompts(sim: SimulatorHandle) -> list[str]:
    return [r["json"]["promptObject"]["prompt"] for r in sim.requests() if r["path"] == "/api/chat-with-ai"]


def test_a_function_tool_round_trip_with_previous_response_id(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    sim.queue_answers(CALL, "It is 18 °C and sunny in Paris.")
    first = client.responses.create(model=MODEL, input="Weather in Paris?", tools=[WEATHER])
    assert first.status == "completed"
    [call] = first.output
    assert call.type == "function_call"
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
    assert call.call_id.startswith("call_")
    assert first.output_text == ""
    assert "get_weather(city: string)" in prompts(sim)[0]

    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18C, sunny"}],
        tools=[WEATHER],
    )
    assert second.output_text == "It is 18 °C and sunny in Paris."
    prompt = prompts(sim)[-1]
    assert prompt.index("Weather in Paris?") < prompt.index('"city": "Paris"') < prompt.index("18C, sunny")
    assert "Tool result (get_weather): 18C, sunny" in prompt


def test_a_streamed_call_arrives_as_function_call_events(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers("Let me look. " + CALL)
    with client.responses.stream(model=MODEL, input="Weather in Paris?", tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert "response.function_call_arguments.delta" in kinds
    done = [event for event in events if event.type == "response.function_call_arguments.done"]
    assert [json.loads(event.arguments) for event in done] == [{"city": "Paris"}]
    assert [item.type for item in final.output] == ["message", "function_call"]
    assert final.output_text == "Let me look."
    assert final.output[1].type == "function_call"
    assert final.output[1].name == "get_weather"
    assert kinds[-1] == "response.completed"


def test_a_required_call_that_never_comes_is_an_error(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers("no call", "still no call")
    with pytest.raises(openai.APIStatusError) as raised:
        client.responses.create(model=MODEL, input="x", tools=[WEATHER], tool_choice="required")
    assert raised.value.status_code == 502
    assert raised.value.code == "invalid_tool_call"


def test_parse_with_a_pydantic_model(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers('Here it is:\n```json\n{"city": "Paris", "celsius": 18}\n```')
    response = client.responses.parse(model=MODEL, input="Paris weather as JSON", text_format=Weather)
    assert response.output_parsed == Weather(city="Paris", celsius=18)
    assert "matches this JSON Schema (Weather)" in prompts(sim)[0]


def test_a_streamed_parse_gives_the_validated_json(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers('Sure: {"city": "Rome", "celsius": 24} Anything else?')
    with client.responses.stream(model=MODEL, input="Rome weather", text_format=Weather) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert json.loads("".join(deltas)) == {"city": "Rome", "celsius": 24}
    assert final.output_parsed == Weather(city="Rome", celsius=24)


def test_json_object_mode(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers('Sure! {"ok": true} Anything else?')
    response = client.responses.create(model=MODEL, input="x", text={"format": {"type": "json_object"}})
    assert json.loads(response.output_text) == {"ok": True}
    assert response.text is not None
    assert response.text.format is not None
    assert response.text.format.type == "json_object"
