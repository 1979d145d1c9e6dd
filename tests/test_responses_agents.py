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


@function_tool
def weather(city: str) -> str:
    """The weather now in a city."""
    return f"Sunny in {city}"


MODELS: dict[str, Callable[[openai.AsyncOpenAI], Model]] = {
    "responses": lambda client: OpenAIResponsesModel(model=MODEL, openai_client=client),
    "chat": lambda client: OpenAIChatCompletionsModel(model=MODEL, openai_client=client),
}


@pytest.mark.parametrize("kind", MODELS)
async def test_an_agent_with_a_tool_answers(
    aclient: openai.AsyncOpenAI, sim: SimulatorHandle, kind: str
) -> None:
    agent = Agent(name="helper", instructions="Be brief.", tools=[weather], model=MODELS[kind](aclient))
    result = await Runner.run(agent, "Hello there")
    calls = [r for r in sim.requests() if r["path"] == "/api/chat-with-ai"]
    assert result.final_output == expected_answer(calls[-1]["json"]["promptObject"]["prompt"])
