"""OpenAI's Agents SDK (`openai-agents`) running an agent against the relay, over sockets: with its
Responses model (`/v1/responses`) and its Chat Completions model (`/v1/chat/completions`)."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest
from agents import (
    Agent,
    Model,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)

from onemin_relay.simulator.answers import expected_answer
from tests.harness import SimulatorHandle

MODEL = "gpt-4o-mini"

set_tracing_disabled(True)  # the SDK would otherwise send traces to OpenAI


CITIES_ASKED: list[str] = []


@function_tool
def weather(city: str) -> str:
    """The weather now in a city."""
    CITIES_ASKED.append(city)
    return f"Sunny in {city}"


def prompts(sim: SimulatorHandle) -> list[str]:
    return [r["json"]["promptObject"]["prompt"] for r in sim.requests() if r["path"] == "/api/chat-with-ai"]


MODELS: dict[str, Callable[[openai.AsyncOpenAI], Model]] = {
    "responses": lambda client: OpenAIResponsesModel(model=MODEL, openai_client=client),
    "chat": lambda client: OpenAIChatCompletionsModel(model=MODEL, openai_client=client),
}


@pytest.mark.parametrize("kind", MODELS)
async def test_an_agent_calls_its_tool_then_answers(
    aclient: openai.AsyncOpenAI, sim: SimulatorHandle, kind: str
) -> None:
    CITIES_ASKED.clear()
    sim.queue_answers(
        '<tool_call>{"name": "weather", "arguments": {"city": "Paris"}}</tool_call>',
        "It is sunny in Paris.",
    )
    agent = Agent(name="helper", instructions="Be brief.", tools=[weather], model=MODELS[kind](aclient))
    result = await Runner.run(agent, "What is the weather in Paris?")
    assert CITIES_ASKED == ["Paris"]
    assert result.final_output == "It is sunny in Paris."
    first, second = prompts(sim)
    assert first.startswith("System: You can call tools.")
    assert "- weather(city: string)" in first
    assert "Tool result (weather): Sunny in Paris" in second


@pytest.mark.parametrize("kind", MODELS)
async def test_an_agent_that_needs_no_tool_answers_in_text(
    aclient: openai.AsyncOpenAI, sim: SimulatorHandle, kind: str
) -> None:
    agent = Agent(name="helper", instructions="Be brief.", tools=[weather], model=MODELS[kind](aclient))
    result = await Runner.run(agent, "Hello there")
    assert result.final_output == expected_answer(prompts(sim)[-1])
