"""`POST /v1/completions` (legacy text completions) end to end: the official openai SDK → relay → simulator,
answers checked against OpenAI's OpenAPI document."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from onemin_relay.simulator.answers import expected_answer
from onemin_relay.translate.completions import FILL_MARKER
from onemin_relay.translate.tokens import count_tokens
from tests.harness import KEY_A, SimulatorHandle
from tests.openapi_schema import assert_matches_schema

MODEL = "gpt-4o-mini"


def prompts_sent(sim: SimulatorHandle) -> list[str]:
    return [r["json"]["promptObject"]["prompt"] for r in sim.requests() if r["path"] == "/api/chat-with-ai"]


def test_a_completion_with_openais_default_of_16_tokens(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    raw = client.completions.with_raw_response.create(model=MODEL, prompt="Once upon a time")
    assert_matches_schema("CreateCompletionResponse", raw.http_response.json())
    completion = raw.parse()
    (choice,) = completion.choices
    answer = expected_answer("Once upon a time")
    assert count_tokens(answer) > 16
    assert choice.text == answer[: len(choice.text)]
    assert count_tokens(choice.text) == 16
    assert choice.finish_reason == "length"
    assert (completion.object, completion.model) == ("text_completion", MODEL)
    assert completion.id.startswith("cmpl-")
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0


def test_batched_prompts_n_and_echo(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    completion = client.completions.create(
        model=MODEL, prompt=["first prompt", "second prompt"], n=2, echo=True, max_tokens=1000
    )
    assert sorted(prompts_sent(sim)) == ["first prompt"] * 2 + ["second prompt"] * 2
    assert [choice.index for choice in completion.choices] == [0, 1, 2, 3]
    assert [choice.text for choice in completion.choices] == [
        "first prompt" + expected_answer("first prompt"),
        "first prompt" + expected_answer("first prompt"),
        "second prompt" + expected_answer("second prompt"),
        "second prompt" + expected_answer("second prompt"),
    ]
    assert all(choice.finish_reason == "stop" for choice in completion.choices)


def test_suffix_and_stop(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    client.completions.create(
        model=MODEL, prompt="def add(a, b):\n", suffix="\nprint(add(1, 2))", max_tokens=50
    )
    (prompt,) = prompts_sent(sim)
    assert f"def add(a, b):\n{FILL_MARKER}\nprint(add(1, 2))" in prompt
    answer = expected_answer("stop here")
    stop = answer[8:11]
    stopped = client.completions.create(model=MODEL, prompt="stop here", stop=[stop], max_tokens=1000)
    assert stopped.choices[0].text == answer[: answer.index(stop)]
    assert stopped.choices[0].finish_reason == "stop"


def test_max_tokens_zero_echoes_without_calling_upstream(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    completion = client.completions.create(model=MODEL, prompt="just echo", max_tokens=0, echo=True)
    assert completion.choices[0].text == "just echo"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == count_tokens("just echo")
    assert prompts_sent(sim) == []


def test_a_stream_with_usage(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    chunks = list(
        client.completions.create(
            model=MODEL,
            prompt=["stream one", "stream two"],
            max_tokens=1000,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    for chunk in chunks:  # the spec has no chunk schema: `finish_reason` and `usage` are null until the last
        if all(choice.finish_reason for choice in chunk.choices):
            fields = {name: value for name, value in chunk.model_dump(exclude_unset=True).items() if value}
            assert_matches_schema(
                "CreateCompletionResponse", {**fields, "choices": fields.get("choices", [])}
            )
    texts = {0: "", 1: ""}
    finishes = {}
    for chunk in chunks[:-1]:
        (choice,) = chunk.choices
        texts[choice.index] += choice.text
        if choice.finish_reason:
            finishes[choice.index] = choice.finish_reason
    assert texts == {0: expected_answer("stream one"), 1: expected_answer("stream two")}
    assert finishes == {0: "stop", 1: "stop"}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_a_stream_fails_mid_way_as_on_chat(client: openai.OpenAI) -> None:
    prompt = "x [[sim:error-mid-stream]] [[sim:length=200]]"
    with pytest.raises(openai.APIError):
        list(client.completions.create(model=MODEL, prompt=prompt, max_tokens=1000, stream=True))


@pytest.mark.parametrize(
    ("fault", "error"),
    [("http-429=3", openai.RateLimitError), ("http-503", openai.InternalServerError)],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_failures_are_openai_errors(
    client: openai.OpenAI, sim: SimulatorHandle, fault: str, error: type[openai.APIStatusError], stream: bool
) -> None:
    sim.set_fault(fault)
    with pytest.raises(error):
        client.completions.create(model=MODEL, prompt="x", stream=stream)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": "x", "logprobs": 1}, "logprobs"),
        ({"prompt": ""}, "prompt"),
        ({"model": "no-such-model", "prompt": "x"}, "model"),
    ],
)
def test_what_cannot_be_served_is_a_clear_openai_error(
    relay_url: str, sim: SimulatorHandle, body: dict[str, Any], param: str
) -> None:
    response = httpx.post(
        f"{relay_url}/v1/completions",
        headers={"Authorization": f"Bearer {KEY_A}"},
        json={"model": MODEL, **body},
    )
    assert response.status_code in {400, 404}
    assert response.json()["error"]["param"] == param
    assert prompts_sent(sim) == []
