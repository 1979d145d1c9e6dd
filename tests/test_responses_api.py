"""`/v1/responses` end to end: the official SDK (and raw HTTP) → relay → simulator, over sockets. Whole and
streamed answers, stored responses and their conversations, limits, and upstream faults."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from onemin_relay.serving import BackgroundServer
from onemin_relay.simulator.answers import expected_answer
from onemin_relay.simulator.limits import estimate_tokens
from onemin_relay.simulator.media import png
from tests.harness import KEY_A, KEY_B, SimulatorHandle
from tests.openapi_schema import assert_matches_schema
from tests.test_translate_responses import EVENT_SCHEMAS

MODEL = "gpt-4o-mini"
VISION = "gpt-4o"
TEXT_ONLY = "qwen3.7-plus"
PNG = png("responses-test", 4, 4)
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def sent_prompt(sim: SimulatorHandle) -> str:
    """The prompt of the last chat call the relay made upstream."""
    calls = [r for r in sim.requests() if r["path"] == "/api/chat-with-ai"]
    prompt: str = calls[-1]["json"]["promptObject"]["prompt"]
    return prompt


def text_of(item: Any) -> str:
    """The text of a listed message item."""
    text: str = item.content[0].text
    return text


def raw_events(
    relay_url: str, body: dict[str, Any], key: str = KEY_A
) -> tuple[list[dict[str, Any]], list[str]]:
    """The SSE stream as sent: (events, each checked against its OpenAI schema and its `event:` line;
    comment lines)."""
    events: list[dict[str, Any]] = []
    comments: list[str] = []
    names: list[str] = []
    with httpx.stream(
        "POST",
        f"{relay_url}/v1/responses",
        json={"model": MODEL, **body, "stream": True},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(":"):
                comments.append(line)
            elif line.startswith("event: "):
                names.append(line.removeprefix("event: "))
            elif line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    assert names == [event["type"] for event in events]
    for event in events:
        assert_matches_schema(EVENT_SCHEMAS[event["type"]], event)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    return events, comments


# --- whole answers --------------------------------------------------------------------------------


def test_a_response_answers_counts_and_is_stored(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    prompt = "Bonjour, ça va? 你好"
    raw = client.responses.with_raw_response.create(model=MODEL, input=prompt, metadata={"run": "1"})
    response = raw.parse()
    answer = expected_answer(prompt)
    assert response.output_text == answer
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.model == MODEL
    assert response.metadata == {"run": "1"}
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (
        estimate_tokens(prompt),
        estimate_tokens(answer),
    )
    assert int(raw.headers["x-onemin-credits"]) > 0
    assert sent_prompt(sim) == prompt
    assert_matches_schema("Response", json.loads(raw.content))

    again = client.responses.retrieve(response.id)
    assert again.output_text == answer
    assert again.model_dump() == response.model_dump()


def test_instructions_and_input_items_fold_into_the_prompt(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    response = client.responses.create(
        model=MODEL,
        instructions="Answer in one word.",
        input=[
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": [{"type": "input_text", "text": "And of Italy?"}]},
        ],
    )
    prompt = sent_prompt(sim)
    assert prompt.startswith("System: Answer in one word.")
    assert prompt.index("Capital of France?") < prompt.index("Paris.") < prompt.index("And of Italy?")
    assert response.output_text == expected_answer(prompt)


def test_images_and_files_are_attached(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    uploaded = client.files.create(file=("photo.png", PNG, "image/png"), purpose="vision")
    pdf = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 tiny").decode()
    response = client.responses.create(
        model=VISION,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Compare"},
                    {"type": "input_image", "image_url": PNG_URL, "detail": "auto"},
                    {"type": "input_image", "file_id": uploaded.id, "detail": "auto"},
                    {"type": "input_file", "file_data": pdf, "filename": "r.pdf"},
                ],
            }
        ],
    )
    calls = [r for r in sim.requests() if r["path"] == "/api/chat-with-ai"]
    attachments = calls[-1]["json"]["promptObject"]["attachments"]
    assert (len(attachments["images"]), len(attachments["files"])) == (2, 1)
    # A stored file is marked by its name, wherever it goes upstream (as in chat).
    prompt = "Compare\n[image 1]\n[file 1: photo.png]\n[file 2: r.pdf]"
    assert sent_prompt(sim) == prompt
    assert response.output_text == expected_answer(prompt, images=2, files=1)


def test_an_image_for_a_text_only_model_is_a_400_naming_the_input(client: openai.OpenAI) -> None:
    content: Any = [{"type": "input_text", "text": "see"}, {"type": "input_image", "image_url": PNG_URL}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=TEXT_ONLY, input=[{"role": "user", "content": content}])
    assert caught.value.param == "input.0.content.1.image_url"
    # Instructions, and calls joined into one assistant turn, do not shift the item named.
    items: Any = [
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "call_2", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
        {"type": "function_call_output", "call_id": "call_2", "output": content},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=TEXT_ONLY, instructions="Be brief.", input=items)
    assert caught.value.param == "input.4.output.1.image_url"


def test_web_search_tool_turns_on_web_search(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    response = client.responses.create(
        model=MODEL, input="news", tools=[{"type": "web_search_preview", "search_context_size": "high"}]
    )
    calls = [r for r in sim.requests() if r["path"] == "/api/chat-with-ai"]
    settings = calls[-1]["json"]["promptObject"]["settings"]["webSearchSettings"]
    assert settings["webSearch"] is True
    assert response.output_text == expected_answer("news", web_search=True, sites=settings["numOfSite"])


def test_a_response_cut_by_max_output_tokens_is_incomplete(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="long [[sim:length=3000]]", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    answer = expected_answer("long [[sim:length=3000]]")
    assert answer.startswith(response.output_text)
    assert len(response.output_text) < len(answer) / 10


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x", "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools.0.type"),
        ({"input": "x", "max_output_tokens": 4}, "max_output_tokens"),
        ({"input": [{"type": "computer_call_output", "call_id": "c"}]}, "input.0"),
        ({}, "input"),
    ],
)
def test_what_the_relay_cannot_do_is_a_clear_400(
    client: openai.OpenAI, sim: SimulatorHandle, body: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, **body)
    assert caught.value.param == param
    assert not [r for r in sim.requests() if r["path"] == "/api/chat-with-ai"]  # nothing spent


def test_an_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="no-such-model", input="x")
    assert caught.value.code == "model_not_found"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("http-429=3", openai.RateLimitError),
        ("insufficient-credits", openai.RateLimitError),
        ("http-503", openai.InternalServerError),
        ("failed-status", openai.InternalServerError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_failures_before_the_answer_are_http_errors(
    client: openai.OpenAI, sim: SimulatorHandle, fault: str, error: type[openai.APIStatusError], stream: bool
) -> None:
    sim.set_fault(fault)
    with pytest.raises(error) as caught:
        client.responses.create(model=MODEL, input="x", stream=stream)
    body = caught.value.body
    assert isinstance(body, dict)
    assert set(body) == {"message", "type", "param", "code"}


# --- streams ----------------------------------------------------------------------------------------


def test_a_stream_gives_the_sdk_its_events_and_final_response(client: openai.OpenAI) -> None:
    prompt = "stream me [[sim:length=300]]"
    deltas: list[str] = []
    kinds: list[str] = []
    with client.responses.stream(model=MODEL, input=prompt) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    answer = expected_answer(prompt)
    assert "".join(deltas) == answer
    assert len(deltas) > 1
    assert final.output_text == answer
    assert final.status == "completed"
    assert final.usage is not None
    assert final.usage.output_tokens == estimate_tokens(answer)
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert client.responses.retrieve(final.id).output_text == answer


def test_stream_events_match_openai_schemas(relay_url: str) -> None:
    events, _ = raw_events(relay_url, {"input": "schema check"})
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == expected_answer("schema check")


def test_a_stream_cut_by_max_output_tokens_ends_incomplete(relay_url: str) -> None:
    events, _ = raw_events(relay_url, {"input": "long [[sim:length=3000]]", "max_output_tokens": 16})
    final = events[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


@pytest.mark.parametrize("magic", ["[[sim:error-mid-stream]]", "[[sim:drop-mid-stream]]"])
def test_a_failure_mid_stream_ends_with_response_failed(
    relay_url: str, client: openai.OpenAI, magic: str
) -> None:
    prompt = f"long enough to be cut {magic} [[sim:length=200]]"
    events, _ = raw_events(relay_url, {"input": prompt})
    error, failed = events[-2:]
    assert error["type"] == "error"
    assert error["message"]
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] == "server_error"
    received = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert expected_answer(prompt).startswith(received)

    with client.responses.stream(model=MODEL, input=prompt) as stream:  # the SDK sees the same
        kinds = [event.type for event in stream]
        with pytest.raises(RuntimeError):
            stream.get_final_response()
    assert kinds[-2:] == ["error", "response.failed"]
    assert client.responses.retrieve(failed["response"]["id"]).status == "failed"


def test_keepalives_flow_while_upstream_is_slow_to_start(
    start_relay: Callable[..., BackgroundServer], sim: SimulatorHandle
) -> None:
    relay = start_relay(stream_keepalive_seconds=0.05)
    prompt = "slow [[sim:slow-first-byte=1500]]"
    events, comments = raw_events(relay.url, {"input": prompt})
    assert comments
    assert all(comment.startswith(": keep-alive") for comment in comments)
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == expected_answer(prompt)


# --- stored responses and conversations -------------------------------------------------------------


def test_previous_response_id_continues_the_conversation(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    first = client.responses.create(model=MODEL, input="My name is Ada.", instructions="Old rules.")
    second = client.responses.create(model=MODEL, input="What is my name?", previous_response_id=first.id)
    prompt = sent_prompt(sim)
    assert (
        prompt.index("My name is Ada.") < prompt.index(first.output_text) < prompt.index("What is my name?")
    )
    assert not prompt.startswith("System: Old rules.")  # instructions are not carried over
    assert second.previous_response_id == first.id
    third = client.responses.create(model=MODEL, input="And again?", previous_response_id=second.id)
    prompt = sent_prompt(sim)
    assert prompt.index("My name is Ada.") < prompt.index(second.output_text) < prompt.index("And again?")
    assert third.output_text == expected_answer(prompt)


def test_a_conversation_goes_on_from_what_is_left_when_an_early_turn_is_deleted(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    first = client.responses.create(model=MODEL, input="Turn one.")
    second = client.responses.create(model=MODEL, input="Turn two.", previous_response_id=first.id)
    client.responses.delete(first.id)
    client.responses.create(model=MODEL, input="Turn three.", previous_response_id=second.id)
    prompt = sent_prompt(sim)
    assert prompt.startswith("User: Turn two.")  # the deleted first turn is gone (its echo stays)
    assert prompt.index("Turn two.") < prompt.index(second.output_text) < prompt.index("Turn three.")


def test_a_conversation_larger_than_a_request_may_be_is_refused(
    start_relay: Callable[..., BackgroundServer], sim: SimulatorHandle
) -> None:
    relay = start_relay(max_request_bytes=6000)
    with openai.OpenAI(base_url=f"{relay.url}/v1", api_key=KEY_A, max_retries=0) as sdk:
        first = sdk.responses.create(model=MODEL, input="a" * 2500)
        second = sdk.responses.create(model=MODEL, input="b" * 2500, previous_response_id=first.id)
        calls = len([r for r in sim.requests() if r["path"] == "/api/chat-with-ai"])
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.responses.create(model=MODEL, input="c", previous_response_id=second.id)
    assert (caught.value.param, caught.value.code) == ("previous_response_id", "conversation_too_large")
    assert len([r for r in sim.requests() if r["path"] == "/api/chat-with-ai"]) == calls  # nothing sent


def test_stored_responses_belong_to_their_key(client: openai.OpenAI, relay_url: str) -> None:
    response = client.responses.create(model=MODEL, input="private")
    with openai.OpenAI(base_url=f"{relay_url}/v1", api_key=KEY_B, max_retries=0) as other:
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(response.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.delete(response.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.input_items.list(response.id)
        with pytest.raises(openai.NotFoundError) as caught:
            other.responses.create(model=MODEL, input="x", previous_response_id=response.id)
        assert caught.value.param == "previous_response_id"
    assert client.responses.retrieve(response.id).output_text == response.output_text


def test_what_cannot_be_done_to_a_stored_response_is_a_400(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="done already")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.cancel(response.id)
    assert caught.value.param == "response_id"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.retrieve(response.id, stream=True)
    assert caught.value.param == "stream"
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel("resp_unknown")


def test_delete_forgets_and_store_false_keeps_nothing(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="forget me")
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(response.id)

    unstored = client.responses.create(model=MODEL, input="never kept", store=False)
    assert unstored.to_dict()["store"] is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)


def test_input_items_list_in_pages(client: openai.OpenAI, relay_url: str) -> None:
    response = client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "two"},
            {"role": "user", "content": "three"},
        ],
    )
    newest_first = client.responses.input_items.list(response.id)
    assert [text_of(item) for item in newest_first.data] == ["three", "two", "one"]
    page = client.responses.input_items.list(response.id, order="asc", limit=2)
    assert [text_of(item) for item in page.data] == ["one", "two"]
    assert page.has_more is True
    rest = client.responses.input_items.list(response.id, order="asc", after=page.data[-1].id)
    assert [text_of(item) for item in rest.data] == ["three"]
    assert rest.has_more is False

    raw = httpx.get(
        f"{relay_url}/v1/responses/{response.id}/input_items",
        headers={"Authorization": f"Bearer {KEY_A}"},
    )
    assert_matches_schema("ResponseItemList", raw.json())
    for query in ("limit=0", "limit=101", "limit=¹", "order=up"):
        bad = httpx.get(
            f"{relay_url}/v1/responses/{response.id}/input_items?{query}",
            headers={"Authorization": f"Bearer {KEY_A}"},
        )
        assert (bad.status_code, bad.json()["error"]["param"]) == (400, query.partition("=")[0])
