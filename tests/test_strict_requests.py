"""Strict where OpenAI is strict (JSON types, malformed keys), lenient where it is (empty messages)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from onemin_relay.simulator.answers import expected_answer
from onemin_relay.simulator.media import png
from tests.harness import KEY_A, SimulatorHandle
from tests.openapi_schema import assert_matches_schema

AUTH = {"Authorization": f"Bearer {KEY_A}"}


def chat(relay_url: str, **fields: Any) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], **fields}
    return httpx.post(f"{relay_url}/v1/chat/completions", json=body, headers=AUTH)


@pytest.mark.parametrize(
    ("field", "value", "param", "expected"),
    [
        ("max_tokens", "10", "max_tokens", "an integer"),
        ("max_completion_tokens", 10.5, "max_completion_tokens", "an integer"),
        ("n", "2", "n", "an integer"),
        ("stream", "true", "stream", "a boolean"),
        ("temperature", "0.5", "temperature", "a number"),
        ("logprobs", 0, "logprobs", "a boolean"),
        ("stream_options", {"include_usage": "yes"}, "stream_options.include_usage", "a boolean"),
        ("user", 42, "user", "a string"),
    ],
)
def test_a_chat_field_of_the_wrong_json_type_is_a_400_naming_it(
    relay_url: str, sim: SimulatorHandle, field: str, value: Any, param: str, expected: str
) -> None:
    response = chat(relay_url, **{field: value})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, "invalid_type")
    assert f"expected {expected}" in error["message"]
    assert_matches_schema("ErrorResponse", response.json())
    assert not sim.requests()


def test_a_message_field_of_the_wrong_type_is_named_with_its_index(relay_url: str) -> None:
    response = chat(relay_url, messages=[{"role": "user", "content": "Hi", "name": 5}])
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages.0.name"


def test_integers_fill_number_fields(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Hi"}],
        temperature=1,
        top_p=1,
        presence_penalty=0,
        frequency_penalty=0,
    )
    assert answer.choices[0].message.content == expected_answer("Hi")


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/images/generations", {"prompt": "a cat", "n": "2"}, "n"),
        ("/v1/images/generations", {"prompt": "a cat", "stream": "false"}, "stream"),
        ("/v1/audio/speech", {"model": "tts-1", "input": "Hi", "voice": "alloy", "speed": "1.5"}, "speed"),
        ("/v1/images/edits", {"prompt": "x", "images": [{"image_url": 5}]}, "images.0.image_url"),
    ],
)
def test_media_json_bodies_take_json_types_too(
    relay_url: str, sim: SimulatorHandle, path: str, body: dict[str, Any], param: str
) -> None:
    response = httpx.post(f"{relay_url}{path}", json=body, headers=AUTH)
    assert response.status_code == 400
    assert (response.json()["error"]["param"], response.json()["error"]["code"]) == (param, "invalid_type")
    assert not sim.requests()


@pytest.mark.parametrize("content", ["", "   ", [{"type": "text", "text": ""}]])
def test_an_empty_user_message_is_answered_like_openai_does(
    client: openai.OpenAI, sim: SimulatorHandle, content: Any
) -> None:
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}]
    )
    prompt = sim.requests()[-1]["json"]["promptObject"]["prompt"]
    assert prompt.strip()  # 1min.ai refuses a blank prompt
    assert answer.choices[0].message.content == expected_answer(prompt)


@pytest.mark.parametrize("key", ["two words", "clé-à-accents", "tab\tinside"])
def test_a_key_the_relay_refuses_says_the_relay_refused_it(
    relay_url: str, sim: SimulatorHandle, key: str
) -> None:
    response = httpx.post(
        f"{relay_url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]},
        headers={b"Authorization": f"Bearer {key}".encode()},
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert "relay refused" in error["message"]
    assert "1min.ai rejected" not in error["message"]
    assert key not in error["message"]
    assert not sim.requests()


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/v1/images/variations", "n", "1_0"),
        ("/v1/images/variations", "n", "٣"),
        ("/v1/audio/transcriptions", "temperature", "1_0"),
        ("/v1/audio/transcriptions", "temperature", "infinity"),
    ],
)
def test_form_numbers_are_numbers_as_json_writes_them(
    relay_url: str, sim: SimulatorHandle, path: str, field: str, value: str
) -> None:
    upload = (
        ("a.png", png("strict", 4, 4), "image/png") if "images" in path else ("a.wav", b"RIFF", "audio/wav")
    )
    form = {field: value, "model": "whisper-1"} if "audio" in path else {field: value}
    response = httpx.post(
        f"{relay_url}{path}", files={"image" if "images" in path else "file": upload}, data=form, headers=AUTH
    )
    assert response.status_code == 400
    assert (response.json()["error"]["param"], response.json()["error"]["code"]) == (field, "invalid_type")
    assert not [r for r in sim.requests() if r["path"] != "/models"]
