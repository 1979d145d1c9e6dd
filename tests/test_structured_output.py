"""`response_format` end to end: the official SDK's `parse()` with a pydantic model, JSON mode, streams
(the streamed content equals the validated JSON), repairs and `strict` failures, against the simulator."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.harness import SimulatorHandle

MODEL = "gpt-4o-mini"
ASK: Any = [{"role": "user", "content": "Paris weather as JSON"}]


class Weather(BaseModel):
    city: str
    celsius: int


def prompts(sim: SimulatorHandle) -> list[str]:
    return [r["json"]["promptObject"]["prompt"] for r in sim.requests() if r["path"] == "/api/chat-with-ai"]


def test_parse_with_a_pydantic_model(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers('Here it is:\n```json\n{"city": "Paris", "celsius": 18}\n```')
    completion = client.chat.completions.parse(model=MODEL, messages=ASK, response_format=Weather)
    assert completion.choices[0].message.parsed == Weather(city="Paris", celsius=18)
    assert completion.choices[0].message.content == '{"city": "Paris", "celsius": 18}'
    prompt = prompts(sim)[0]
    assert "matches this JSON Schema (Weather)" in prompt
    assert '"celsius":{"title":"Celsius","type":"integer"}' in prompt


def test_an_invalid_answer_is_repaired(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers('{"city": "Paris"}', '{"city": "Paris", "celsius": 18}')
    completion = client.chat.completions.parse(model=MODEL, messages=ASK, response_format=Weather)
    assert completion.choices[0].message.parsed == Weather(city="Paris", celsius=18)
    assert "'celsius' is a required property" in prompts(sim)[1]


def test_strict_and_still_invalid_is_an_error(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers("no JSON here", "nor here")
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.parse(model=MODEL, messages=ASK, response_format=Weather)  # sent as strict
    assert raised.value.status_code == 502
    assert raised.value.code == "invalid_structured_output"


def test_json_mode_gives_bare_json(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers('Sure! {"ok": true, "items": [1, 2]} Anything else?')
    completion = client.chat.completions.create(
        model=MODEL, messages=ASK, response_format={"type": "json_object"}
    )
    assert json.loads(completion.choices[0].message.content or "") == {"ok": True, "items": [1, 2]}
    assert "Answer with one JSON object and nothing else" in prompts(sim)[0]


def test_the_stream_helper_parses_the_same_json(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    answer = 'Result: {"city": "Paris", "celsius": 18}'
    sim.queue_answers(answer, answer)
    whole = client.chat.completions.parse(model=MODEL, messages=ASK, response_format=Weather)
    with client.chat.completions.stream(model=MODEL, messages=ASK, response_format=Weather) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == whole.choices[0].message.content
    assert final.choices[0].message.parsed == Weather(city="Paris", celsius=18)


class GetWeather(BaseModel):
    city: str


def test_parse_with_a_pydantic_function_tool(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers('<tool_call>{"name": "GetWeather", "arguments": {"city": "Paris"}}</tool_call>')
    completion = client.chat.completions.parse(
        model=MODEL, messages=ASK, tools=[openai.pydantic_function_tool(GetWeather)]
    )
    [tool_call] = completion.choices[0].message.tool_calls or []
    assert tool_call.function.parsed_arguments == GetWeather(city="Paris")
