"""LangChain (`langchain-openai`) against the relay over real sockets, the simulator playing a model that
uses tools: `bind_tools` → `AIMessage.tool_calls`, and `with_structured_output` in each of its methods
giving a parsed object (never None)."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from tests.harness import KEY_A, SimulatorHandle

MODEL = "gpt-4o-mini"


class GetWeather(BaseModel):
    """Current weather in a city."""

    city: str = Field(description="City name")


class Weather(BaseModel):
    city: str
    celsius: int


@pytest.fixture
def llm(relay_url: str) -> ChatOpenAI:
    return ChatOpenAI(model=MODEL, base_url=f"{relay_url}/v1", api_key=KEY_A, max_retries=0)


def call(name: str, **arguments: object) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def test_bind_tools_gives_tool_calls(llm: ChatOpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers(call("GetWeather", city="Paris"))
    message = llm.bind_tools([GetWeather]).invoke("Weather in Paris?")
    assert isinstance(message, AIMessage)
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("GetWeather", {"city": "Paris"})]
    assert message.tool_calls[0]["id"]


def test_bind_tools_streams_the_same_calls(llm: ChatOpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers("Checking. " + call("GetWeather", city="Paris"))
    chunks = list(llm.bind_tools([GetWeather]).stream("Weather in Paris?"))
    message = chunks[0]
    for chunk in chunks[1:]:
        message = message + chunk  # type: ignore[assignment]
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("GetWeather", {"city": "Paris"})]
    assert message.content == "Checking."


def test_an_agent_loop_through_langchain(llm: ChatOpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers(call("GetWeather", city="Paris"), "It is 18 °C in Paris.")
    bound = llm.bind_tools([GetWeather])
    history: list[object] = [HumanMessage("Weather in Paris?")]
    first = bound.invoke(history)  # type: ignore[arg-type]
    history += [first, ToolMessage("18 °C", tool_call_id=first.tool_calls[0]["id"])]
    final = bound.invoke(history)  # type: ignore[arg-type]
    assert final.content == "It is 18 °C in Paris."


@pytest.mark.parametrize("method", ["json_schema", "json_mode", "function_calling"])
def test_with_structured_output_parses_in_every_method(
    llm: ChatOpenAI, sim: SimulatorHandle, method: str
) -> None:
    answer = '{"city": "Paris", "celsius": 18}'
    if method == "function_calling":
        answer = call("Weather", city="Paris", celsius=18)
    sim.queue_answers(answer)
    structured = llm.with_structured_output(Weather, method=method)  # type: ignore[arg-type]
    result = structured.invoke("Paris weather as JSON")
    assert result == Weather(city="Paris", celsius=18)


def test_with_structured_output_default_method(llm: ChatOpenAI, sim: SimulatorHandle) -> None:
    sim.queue_answers('Here: {"city": "Paris", "celsius": 18}')
    assert llm.with_structured_output(Weather).invoke("Paris weather") == Weather(city="Paris", celsius=18)
