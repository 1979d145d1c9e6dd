"""`POST /v1/chat/completions` (non-streaming) end to end: the official SDK → relay → simulator."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from onemin_relay.serving import BackgroundServer
from onemin_relay.simulator.answers import expected_answer
from onemin_relay.simulator.limits import estimate_tokens
from onemin_relay.simulator.media import png
from onemin_relay.translate.tokens import count_tokens
from tests.harness import KEY_A, KEY_B, UNKNOWN_KEY, SimulatorHandle
from tests.openapi_schema import assert_matches_schema

VISION = "gpt-4o"
TEXT_ONLY = "qwen3.7-plus"


def chat_calls(sim: SimulatorHandle) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["path"] == "/api/chat-with-ai"]


def sent(sim: SimulatorHandle) -> dict[str, Any]:
    """The body of the last chat call the relay made upstream."""
    body: dict[str, Any] = chat_calls(sim)[-1]["json"]
    return body


def uploads(sim: SimulatorHandle) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["path"] == "/api/assets"]


def user(content: Any) -> list[Any]:
    return [{"role": "user", "content": content}]


PNG = png("chat-test", 4, 4)
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


# --- the happy path ----------------------------------------------------------------------------------


def test_completion_with_usage_and_credits(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    prompt = "Bonjour, ça va? 你好"
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=user(prompt))
    completion = raw.parse()
    answer = expected_answer(prompt)
    assert completion.choices[0].message.content == answer
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        estimate_tokens(prompt),
        estimate_tokens(answer),
    )
    assert int(raw.headers["x-onemin-credits"]) > 0
    assert sent(sim) == {
        "type": "UNIFY_CHAT_WITH_AI",
        "model": "gpt-4o-mini",
        "promptObject": {"prompt": prompt},
    }
    assert chat_calls(sim)[-1]["query"] == {}


def test_response_matches_the_openai_schema(relay_url: str) -> None:
    response = httpx.post(
        f"{relay_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY_A}"},
        json={"model": "gpt-4o-mini", "messages": user("schema")},
    )
    assert response.status_code == 200
    assert_matches_schema("CreateChatCompletionResponse", response.json())


def test_zero_upstream_token_counts_fall_back_to_tiktoken(client: openai.OpenAI) -> None:
    prompt = "count me [[sim:zero-tokens]]"
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=user(prompt))
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == count_tokens(prompt)
    assert completion.usage.completion_tokens == count_tokens(expected_answer(prompt))


def test_the_conversation_is_folded_into_one_prompt(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! 👋"},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
    ]
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    prompt = "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello! 👋\n\nUser: What is 2+2?"
    assert sent(sim)["promptObject"]["prompt"] == prompt
    assert completion.choices[0].message.content == expected_answer(prompt)


def test_sampling_parameters_are_accepted_and_not_sent(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=user("params"),
        temperature=0.1,
        top_p=0.5,
        presence_penalty=1,
        frequency_penalty=1,
        seed=3,
        user="someone",
    )
    assert completion.choices[0].message.content == expected_answer("params")
    assert set(sent(sim)) == {"type", "model", "promptObject"}


TOOL_TURNS: list[Any] = [
    {"role": "system", "content": "You can call tools.", "name": "setup"},
    {"role": "user", "content": "Weather in Paris?", "name": "alice"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "index": 0,
                "function": {"name": "weather", "arguments": "{}"},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "name": "weather", "content": "18°C"},
    {"role": "user", "content": "Thanks"},
]
CLIENT_BODIES: dict[str, dict[str, Any]] = {
    # What Open WebUI sends: its own fields, explicit nulls, usage in streams.
    "open-webui": {
        "messages": user("hi"),
        "user": "someone@example.com",
        "metadata": {"chat_id": "c1", "message_id": "m1"},
        "stream_options": {"include_usage": True},
        "max_tokens": None,
        "temperature": None,
        "seed": None,
        "stop": None,
        "n": None,
    },
    # LibreChat and n8n: tools, structured output, parallel tool calls, tool-call turns with null content.
    "librechat": {
        "messages": TOOL_TURNS,
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {}}},
    },
    "n8n": {
        "messages": TOOL_TURNS,
        "tools": [{"type": "function", "function": {"name": "weather"}}],
        "response_format": {"type": "text"},
        "max_tokens": None,
        "stream_options": None,
        "reasoning_effort": "low",
    },
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("name", sorted(CLIENT_BODIES))
def test_what_popular_clients_send_is_answered(relay_url: str, name: str, stream: bool) -> None:
    body = {"model": "gpt-4o-mini", "stream": stream, **CLIENT_BODIES[name]}
    response = post(relay_url, body, {"Authorization": f"Bearer {KEY_A}"})
    assert response.status_code == 200, response.text
    if stream:
        assert response.text.endswith("data: [DONE]\n\n")
    else:
        assert response.json()["choices"][0]["message"]["content"]


# --- relay-side parameters ---------------------------------------------------------------------------


def test_stop_sequences_cut_the_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=user("stop"), stop=["simulée"])
    assert completion.choices[0].message.content == expected_answer("stop").split("simulée")[0]
    assert completion.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_token_limits_truncate_with_finish_reason_length(client: openai.OpenAI, param: str) -> None:
    limits: dict[str, Any] = {param: 5}
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=user("limit"), **limits)
    content = completion.choices[0].message.content
    assert content
    assert expected_answer("limit").startswith(content)
    assert count_tokens(content) <= 5
    assert completion.choices[0].finish_reason == "length"


def test_n_choices_are_parallel_upstream_calls(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=user("twice"), n=3)
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert {choice.message.content for choice in completion.choices} == {expected_answer("twice")}
    assert len(chat_calls(sim)) == 3
    single = client.chat.completions.create(model="gpt-4o-mini", messages=user("twice"))
    assert completion.usage is not None
    assert single.usage is not None
    # As OpenAI counts it: the prompt once, every choice's completion.
    assert completion.usage.prompt_tokens == single.usage.prompt_tokens
    assert completion.usage.completion_tokens == 3 * single.usage.completion_tokens


# --- web search --------------------------------------------------------------------------------------


def test_web_search_options_turn_on_web_search(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=user("news?"), web_search_options={"search_context_size": "high"}
    )
    settings = sent(sim)["promptObject"]["settings"]["webSearchSettings"]
    assert settings == {"webSearch": True, "numOfSite": 5, "maxWord": 2000}
    assert completion.choices[0].message.content == expected_answer("news?", web_search=True, sites=5)


def test_online_suffix_turns_on_web_search(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    completion = client.chat.completions.create(model="gpt-4o-mini:online", messages=user("news?"))
    assert sent(sim)["model"] == "gpt-4o-mini"
    assert sent(sim)["promptObject"]["settings"]["webSearchSettings"]["webSearch"] is True
    assert completion.choices[0].message.content == expected_answer("news?", web_search=True)
    assert completion.model == "gpt-4o-mini:online"


# --- images and files --------------------------------------------------------------------------------


def test_image_by_data_url_is_uploaded_and_attached(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    content = [{"type": "text", "text": "Describe"}, {"type": "image_url", "image_url": {"url": PNG_URL}}]
    completion = client.chat.completions.create(model=VISION, messages=user(content))
    [upload] = uploads(sim)
    assert upload["multipart"][0]["filename"] == "image-1.png"
    attachments = sent(sim)["promptObject"]["attachments"]
    assert len(attachments["images"]) == 1
    assert attachments["images"][0].endswith(".png")
    assert attachments["files"] == []
    assert sent(sim)["promptObject"]["prompt"] == "Describe\n[image 1]"
    assert completion.choices[0].message.content == expected_answer("Describe\n[image 1]", images=1)


def test_image_by_url_is_fetched_uploaded_and_attached(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    stored = sim.http.post(
        "/api/assets", headers={"API-KEY": KEY_A}, files={"asset": ("remote.png", PNG, "image/png")}
    ).json()
    url = f"{sim.url}/cdn/{stored['fileContent']['path']}"
    content = [{"type": "image_url", "image_url": {"url": url}}]
    completion = client.chat.completions.create(model=VISION, messages=user(content))
    relay_uploads = uploads(sim)[1:]
    assert [u["multipart"][0]["filename"] for u in relay_uploads] == ["image-1.png"]
    assert len(sent(sim)["promptObject"]["attachments"]["images"]) == 1
    assert completion.choices[0].message.content == expected_answer("[image 1]", images=1)


def test_image_urls_on_private_networks_are_refused(
    start_relay: Callable[..., BackgroundServer], sim: SimulatorHandle
) -> None:
    relay = start_relay()  # fetch_allow_private defaults to False
    content = [{"type": "image_url", "image_url": {"url": f"{sim.url}/cdn/images/x.png"}}]
    with (
        openai.OpenAI(base_url=f"{relay.url}/v1", api_key=KEY_A, max_retries=0) as sdk,
        pytest.raises(openai.BadRequestError) as caught,
    ):
        sdk.chat.completions.create(model=VISION, messages=user(content))
    assert caught.value.param == "messages.0.content.0.image_url.url"
    assert "private" in caught.value.message
    assert not chat_calls(sim)


def test_images_for_a_text_only_model_are_a_400_not_dropped(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    content = [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": PNG_URL}}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=TEXT_ONLY, messages=user(content))
    assert caught.value.param == "messages.0.content.1.image_url.url"
    assert "does not accept image input" in caught.value.message
    assert not uploads(sim)
    assert not chat_calls(sim)


@pytest.mark.parametrize(
    ("url", "param_end"),
    [
        ("data:image/png;base64,%%%%", "image_url.url"),
        ("data:image/png;base64," + base64.b64encode(b"not an image").decode(), "image_url.url"),
        ("ftp://example.com/a.png", "image_url.url"),
    ],
)
def test_bad_images_are_400(client: openai.OpenAI, sim: SimulatorHandle, url: str, param_end: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=VISION, messages=user([{"type": "image_url", "image_url": {"url": url}}])
        )
    assert str(caught.value.param).endswith(param_end)
    assert not chat_calls(sim)


def test_file_data_is_uploaded_and_attached_by_uuid(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    data = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 tiny").decode()
    content = [
        {"type": "text", "text": "Summarise"},
        {"type": "file", "file": {"file_data": data, "filename": "r.pdf"}},
    ]
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=user(content))
    [upload] = uploads(sim)
    assert upload["multipart"][0]["filename"] == "r.pdf"
    attachments = sent(sim)["promptObject"]["attachments"]
    assert attachments["images"] == []
    assert len(attachments["files"]) == 1
    assert completion.choices[0].message.content == expected_answer("Summarise\n[file 1: r.pdf]", files=1)


def test_an_image_as_file_data_goes_to_images(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    content = [{"type": "file", "file": {"file_data": base64.b64encode(PNG).decode(), "filename": "pic.png"}}]
    client.chat.completions.create(model=VISION, messages=user(content))
    attachments = sent(sim)["promptObject"]["attachments"]
    assert (len(attachments["images"]), attachments["files"]) == (1, [])


def test_unsupported_document_types_are_400(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    content = [
        {"type": "file", "file": {"file_data": base64.b64encode(b"# hi").decode(), "filename": "notes.md"}}
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=user(content))
    assert caught.value.param == "messages.0.content.0.file.filename"
    assert not uploads(sim)


def test_file_id_of_an_uploaded_file(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    uploaded = client.files.create(file=("notes.txt", b"Some notes", "text/plain"), purpose="user_data")
    content = [{"type": "text", "text": "Read"}, {"type": "file", "file": {"file_id": uploaded.id}}]
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=user(content))
    assert len(sent(sim)["promptObject"]["attachments"]["files"]) == 1
    assert completion.choices[0].message.content == expected_answer("Read\n[file 1: notes.txt]", files=1)


def test_file_ids_of_another_key_are_not_found(
    client: openai.OpenAI, relay_url: str, sim: SimulatorHandle
) -> None:
    uploaded = client.files.create(file=("mine.txt", b"private", "text/plain"), purpose="user_data")
    content = [{"type": "file", "file": {"file_id": uploaded.id}}]
    with (
        openai.OpenAI(base_url=f"{relay_url}/v1", api_key=KEY_B, max_retries=0) as other,
        pytest.raises(openai.NotFoundError) as caught,
    ):
        other.chat.completions.create(model="gpt-4o-mini", messages=user(content))
    assert caught.value.param == "messages.0.content.0.file.file_id"
    assert not chat_calls(sim)


# --- errors ------------------------------------------------------------------------------------------


def post(relay_url: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{relay_url}/v1/chat/completions", json=body, headers=headers or {})


@pytest.mark.parametrize("authorization", [None, "Basic abc", "Bearer", "Token sk-1"])
def test_missing_or_malformed_auth_is_401_and_nothing_goes_upstream(
    relay_url: str, sim: SimulatorHandle, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = post(relay_url, {"model": "gpt-4o-mini", "messages": user("x")}, headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert not sim.requests()


def test_a_key_1min_rejects_is_401_and_never_echoed(relay_url: str) -> None:
    with (
        openai.OpenAI(base_url=f"{relay_url}/v1", api_key=UNKNOWN_KEY, max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        sdk.chat.completions.create(model="gpt-4o-mini", messages=user("x"))
    assert caught.value.code == "invalid_api_key"
    assert UNKNOWN_KEY not in str(caught.value.body) + caught.value.message
    assert_matches_schema("ErrorResponse", caught.value.response.json())


@pytest.mark.parametrize("model", ["gpt-0-imaginary", "claude-sonnet-4-6"])  # unknown; DISABLED upstream
def test_unknown_or_disabled_models_are_404(client: openai.OpenAI, sim: SimulatorHandle, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model=model, messages=user("x"))
    assert (caught.value.code, caught.value.param) == ("model_not_found", "model")
    assert model in caught.value.message
    assert not chat_calls(sim)


def test_a_model_without_chat_is_a_400_saying_so(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="qwen-image-plus", messages=user("x"))
    assert (caught.value.code, caught.value.param) == ("unsupported_model", "model")
    assert "chat completions" in caught.value.message
    assert not chat_calls(sim)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-4o-mini"}, "messages"),
        ({"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"model": "gpt-4o-mini", "messages": user("x"), "n": 100}, "n"),
        (
            {"model": "gpt-4o-mini", "messages": user([{"type": "input_audio"}])},
            "messages.0.content.0.input_audio",
        ),
    ],
)
def test_invalid_requests_are_400_naming_the_param(relay_url: str, body: Any, param: str) -> None:
    response = post(relay_url, body, {"Authorization": f"Bearer {KEY_A}"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_a_body_that_is_not_json_is_400(relay_url: str) -> None:
    response = httpx.post(
        f"{relay_url}/v1/chat/completions", content=b"{nope", headers={"Authorization": f"Bearer {KEY_A}"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_upstream_rate_limit_is_429_with_retry_after(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.set_fault("http-429=7")
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=user("x"))
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "7"


def test_exhausted_credits_are_insufficient_quota_not_to_be_retried(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    sim.set_fault("insufficient-credits")
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=user("x"))
    assert caught.value.code == "insufficient_quota"
    assert caught.value.type == "insufficient_quota"
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "credits" in caught.value.message


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ("http-503", 503),
        ("http-500", 502),
        ("http-502", 502),
        ("cloudflare-522", 504),
        ("failed-status", 502),
    ],
)
def test_upstream_outages_are_5xx(
    client: openai.OpenAI, sim: SimulatorHandle, fault: str, status: int
) -> None:
    sim.set_fault(fault)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=user("x"))
    assert caught.value.status_code == status
    assert caught.value.type == "server_error"


def test_an_unparseable_image_url_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "http://[::1/a.png"}}],
                }
            ],
        )
    assert refused.value.body["param"] == "messages.0.content.0.image_url.url"  # type: ignore[index]
    assert "malformed" in refused.value.message
