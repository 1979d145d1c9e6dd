"""Unit tests of the legacy completions translation: request → CoreRequests, results/events → wire."""

from __future__ import annotations

from typing import Any

import pytest

from onemin_relay.core.types import ChoiceDone, ChoiceOut, CoreResult, StreamUsage, TextDelta, Usage
from onemin_relay.errors import OpenAIError
from onemin_relay.translate import chat_wire as wire
from onemin_relay.translate.completions import (
    FILL_MARKER,
    CompletionRequest,
    CompletionStream,
    completion_object,
    core_requests,
    parse_completion_request,
)


def parse(**body: Any) -> CompletionRequest:
    return parse_completion_request({"model": "gpt-4o-mini", **body})


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": ["ok", ""]}, "prompt.1"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": [[1, 2]]}, "prompt"),
        ({"prompt": ["ok", {"x": 1}]}, "prompt.1"),
        ({"prompt": "x", "max_tokens": "10"}, "max_tokens"),
        ({"prompt": "x", "max_tokens": -1}, "max_tokens"),
        ({"prompt": "x", "n": 9}, "n"),
        ({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"prompt": "x", "logprobs": 2}, "logprobs"),
        ({"prompt": ["x"] * 9, "n": 2}, "prompt"),
        ({"prompt": "x", "echo": "yes"}, "echo"),
    ],
)
def test_bad_requests_are_400s_naming_the_param(body: dict[str, Any], param: str) -> None:
    with pytest.raises(OpenAIError) as caught:
        parse(**body)
    assert caught.value.status == 400
    assert caught.value.param == param


def test_max_tokens_defaults_to_16_as_on_openai() -> None:
    assert parse(prompt="x").token_limit == 16
    assert parse(prompt="x", max_tokens=None).token_limit == 16
    assert parse(prompt="x", max_tokens=200).token_limit == 200


def test_each_prompt_is_one_core_request_with_n_choices() -> None:
    cores = core_requests(parse(prompt=["Once upon", "A long time"], n=2, stop=["\n"], max_tokens=5))
    assert [core.messages for core in cores] == [
        [wire.Message(role="user", content="Once upon")],
        [wire.Message(role="user", content="A long time")],
    ]
    assert {(core.choices, core.stop, core.token_limit, core.param_prefix) for core in cores} == {
        (2, ("\n",), 5, "prompt")
    }
    assert core_requests(parse(prompt="x", stop="END"))[0].stop == ("END",)


def test_a_suffix_makes_a_fill_in_the_middle_task() -> None:
    (core,) = core_requests(parse(prompt="def add(a, b):\n    ", suffix="\n\nprint(add(1, 2))"))
    system, user = core.messages
    assert system.role == "system"
    assert FILL_MARKER in str(system.content)
    assert user.content == f"def add(a, b):\n    {FILL_MARKER}\n\nprint(add(1, 2))"
    # with a suffix, an empty prompt is a completion at the start of the text
    assert core_requests(parse(prompt="", suffix="tail"))[0].messages[1].content == f"{FILL_MARKER}tail"


def result(*texts: str, usage: Usage, finish: Any = "stop") -> CoreResult:
    return CoreResult(tuple(ChoiceOut(text, (), finish) for text in texts), usage, 1, "ab-cd")


def test_batched_prompts_give_choices_in_prompt_then_choice_order() -> None:
    request = parse(prompt=["A", "B"], n=2, echo=True)
    body = completion_object(
        request,
        [result(" a1", " a2", usage=Usage(3, 4)), result(" b1", " b2", usage=Usage(5, 6), finish="length")],
        created=1700000000,
    )
    assert body["object"] == "text_completion"
    assert body["id"] == "cmpl-abcd"
    assert [(c["index"], c["text"], c["finish_reason"]) for c in body["choices"]] == [
        (0, "A a1", "stop"),
        (1, "A a2", "stop"),
        (2, "B b1", "length"),
        (3, "B b2", "length"),
    ]
    assert body["usage"] == {"prompt_tokens": 8, "completion_tokens": 10, "total_tokens": 18}
    assert all(choice["logprobs"] is None for choice in body["choices"])


def test_a_stream_echoes_then_streams_each_choice_then_the_usage() -> None:
    request = parse(prompt=["A", "B"], echo=True, stream=True, stream_options={"include_usage": True})
    stream = CompletionStream(request, created=1, completion_id="cmpl-1")
    chunks = stream.start()
    chunks += stream.feed(1, TextDelta(0, " b"))
    chunks += stream.feed(0, TextDelta(0, " a"))
    chunks += stream.feed(0, TextDelta(0, ""))
    chunks += stream.feed(0, ChoiceDone(0, "length"))
    chunks += stream.feed(0, StreamUsage(Usage(1, 2), 0))
    chunks += stream.feed(1, ChoiceDone(0, "tool_calls"))
    chunks += stream.feed(1, StreamUsage(Usage(3, 4), 0))
    assert [
        (c["choices"][0]["index"], c["choices"][0]["text"], c["choices"][0]["finish_reason"]) for c in chunks
    ] == [
        (0, "A", None),
        (1, "B", None),
        (1, " b", None),
        (0, " a", None),
        (0, "", "length"),
        (1, "", "stop"),
    ]
    assert all(chunk["usage"] is None and chunk["object"] == "text_completion" for chunk in chunks)
    last = stream.usage_chunk()
    assert last["choices"] == []
    assert last["usage"] == {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}


def test_chunks_carry_no_usage_field_unless_asked() -> None:
    stream = CompletionStream(parse(prompt="A", stream=True), created=1)
    assert stream.start() == []
    (chunk,) = stream.feed(0, TextDelta(0, "x"))
    assert "usage" not in chunk
