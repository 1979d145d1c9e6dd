"""Inputs that once reached a 500: each is now a 400 OpenAI error naming the parameter, and nothing
goes upstream."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.harness import KEY_A, SimulatorHandle

AUTH = {"Authorization": f"Bearer {KEY_A}", "Content-Type": "application/json"}
HUGE = "9" * 5000  # past Python's 4300-digit int conversion limit


def assert_400(response: httpx.Response, param: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_a_superscript_digit_as_files_limit_is_a_400(relay_url: str) -> None:
    response = httpx.get(f"{relay_url}/v1/files?limit=%C2%B9", headers=AUTH)
    assert_400(response, "limit")


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", '{"model": "gpt-4o-mini", "messages": [], "seed": %s}', "seed"),
        ("/v1/images/generations", '{"prompt": "a cat", "n": %s}', "n"),
        ("/v1/audio/speech", '{"model": "tts-1", "input": "hi", "voice": "alloy", "speed": -%s}', "speed"),
        (
            "/v1/chat/completions",
            '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],'
            ' "logit_bias": {"1": [%s]}}',
            "logit_bias.1.0",
        ),
    ],
)
def test_an_integer_too_long_to_convert_is_a_400(
    relay_url: str, sim: SimulatorHandle, path: str, body: str, param: str
) -> None:
    response = httpx.post(f"{relay_url}{path}", headers=AUTH, content=body % HUGE)
    assert_400(response, param)
    assert sim.requests() == []


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999", "-1E400"])
def test_non_finite_numbers_are_a_400(relay_url: str, constant: str) -> None:
    body = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "temperature": %s}'
    response = httpx.post(f"{relay_url}/v1/chat/completions", headers=AUTH, content=body % constant)
    assert_400(response, "temperature")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("content", "param"),
    [
        ('"hi \\ud800"', "messages.0.content"),
        ('"\\udc00"', "messages.0.content"),
        (
            '[{"type": "text", "text": "ok"}, {"type": "text", "text": "x\\uDBFF"}]',
            "messages.0.content.1.text",
        ),
    ],
)
def test_a_lone_surrogate_in_chat_text_is_a_400(
    relay_url: str, sim: SimulatorHandle, content: str, param: str, stream: bool
) -> None:
    body = '{"model": "gpt-4o-mini", "stream": %s, "messages": [{"role": "user", "content": %s}]}'
    response = httpx.post(
        f"{relay_url}/v1/chat/completions", headers=AUTH, content=body % (str(stream).lower(), content)
    )
    assert_400(response, param)
    assert sim.requests() == []


def test_a_surrogate_pair_is_an_ordinary_character(relay_url: str) -> None:
    body = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "smile \\ud83d\\ude00"}]}'
    response = httpx.post(f"{relay_url}/v1/chat/completions", headers=AUTH, content=body)
    assert response.status_code == 200


def test_a_lone_surrogate_in_a_key_is_named_safely(relay_url: str) -> None:
    body: Any = '{"model": "gpt-4o-mini", "messages": [], "metadata": {"\\ud800": "x"}}'
    response = httpx.post(f"{relay_url}/v1/chat/completions", headers=AUTH, content=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"].startswith("metadata.")
