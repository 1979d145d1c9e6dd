"""Open WebUI's real request shapes replayed against the relay over sockets (tests/fixtures/open_webui):
chat with the 28 built-in tools it sends under native function calling, stream and not; the speech probes
it sends without a key; the model list with and without a key; an image at its default size."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from onemin_relay.serving import BackgroundServer
from tests.harness import KEY_A, SimulatorHandle
from tests.open_webui import builtin_tools, recorded_requests

REQUESTS = recorded_requests()
TOOLS_PROMPT_MAX_CHARS = 4000  # the default


def replay(url: str, name: str, *, key: str = KEY_A, **changes: Any) -> httpx.Response:
    """Send a recorded request as Open WebUI does (`changes` replace top-level body fields)."""
    recorded = REQUESTS[name]
    headers = {"Authorization": f"Bearer {key}"} if recorded["auth"] else {}
    body = {**recorded["json"], **changes} if "json" in recorded else None
    return httpx.request(recorded["method"], url + recorded["path"], json=body, headers=headers, timeout=60)


def events(response: httpx.Response) -> list[dict[str, Any]]:
    lines = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def upstream_prompts(sim: SimulatorHandle) -> list[str]:
    return [r["json"]["promptObject"]["prompt"] for r in sim.requests() if r["path"] == "/api/chat-with-ai"]


# --- chat with the captured tool list ----------------------------------------------------------------


def test_hi_with_the_28_tools_answers_without_a_call_and_a_bounded_prompt(
    relay_url: str, sim: SimulatorHandle
) -> None:
    sim.queue_answers("Hello! How can I help you today?")
    response = replay(relay_url, "chat")
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"] == "Hello! How can I help you today?"
    assert "tool_calls" not in choice["message"] or not choice["message"]["tool_calls"]
    [prompt] = upstream_prompts(sim)  # one upstream call: no repair, no retry
    assert len(prompt) <= TOOLS_PROMPT_MAX_CHARS + len("System: \n\nUser: Hi")
    assert len(json.dumps(builtin_tools())) > 5 * len(prompt)  # what Open WebUI sent, five times over
    assert all(f"- {tool['function']['name']}(" in prompt for tool in builtin_tools())


def test_hi_streamed_as_open_webui_asks_ends_with_usage_and_no_call(
    relay_url: str, sim: SimulatorHandle
) -> None:
    sim.queue_answers("Hello! How can I help you today?")
    response = replay(relay_url, "chat_stream")
    assert response.status_code == 200
    chunks = events(response)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello! How can I help you today?"
    assert not any(c["choices"] and c["choices"][0]["delta"].get("tool_calls") for c in chunks)
    finish = [
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]
    ]
    assert finish == ["stop"]
    assert chunks[-1]["usage"]["prompt_tokens"] > 0  # stream_options.include_usage
    [prompt] = upstream_prompts(sim)
    assert len(prompt) <= TOOLS_PROMPT_MAX_CHARS + len("System: \n\nUser: Hi")


def test_a_question_that_needs_a_tool_gets_the_call_streamed(relay_url: str, sim: SimulatorHandle) -> None:
    call = {"name": "search_web", "arguments": {"query": "Paris weather today"}}
    sim.queue_answers(f"<tool_call>{json.dumps(call)}</tool_call>")
    ask = [{"role": "user", "content": "What is the weather in Paris today?"}]
    response = replay(relay_url, "chat_stream", messages=ask)
    assert response.status_code == 200
    chunks = events(response)
    deltas = [d for c in chunks if c["choices"] for d in c["choices"][0]["delta"].get("tool_calls") or []]
    assert deltas[0]["function"]["name"] == "search_web"
    arguments = "".join(d["function"].get("arguments") or "" for d in deltas)
    assert json.loads(arguments) == {"query": "Paris weather today"}
    finish = [
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]
    ]
    assert finish == ["tool_calls"]


def test_the_title_task_is_a_plain_completion(relay_url: str, sim: SimulatorHandle) -> None:
    sim.queue_answers('{"title": "👋 Friendly greeting"}')
    response = replay(relay_url, "title")
    assert response.status_code == 200
    assert json.loads(response.json()["choices"][0]["message"]["content"]) == {
        "title": "👋 Friendly greeting"
    }
    [prompt] = upstream_prompts(sim)
    assert "You can call tools" not in prompt


# --- probes and model listing ------------------------------------------------------------------------


def test_the_speech_probes_answer_without_a_key(relay_url: str) -> None:
    models = replay(relay_url, "audio_models")
    assert models.status_code == 200
    listed = {model["id"]: model["name"] for model in models.json()["models"]}
    assert {"tts-1", "tts-1-hd", "google-tts", "elevenlabs-tts"} <= set(listed)
    assert listed["tts-1"] == "TTS 1 - OpenAI"
    assert not {"whisper-1", "gpt-4o-mini"} & set(listed)  # speech models only
    voices = replay(relay_url, "audio_voices")
    assert voices.status_code == 200
    assert voices.json()["voices"][0] == {"id": "alloy", "name": "alloy"}
    assert [v["id"] for v in voices.json()["voices"]] == ["alloy", "echo", "fable", "onyx", "nova", "shimmer"]


def test_voices_of_one_model(relay_url: str) -> None:
    one = httpx.get(f"{relay_url}/v1/audio/voices", params={"model": "tts-1-hd"})
    assert len(one.json()["voices"]) == 6
    named_by_the_caller = httpx.get(f"{relay_url}/v1/audio/voices", params={"model": "google-tts"})
    assert named_by_the_caller.json() == {"voices": []}  # Google voice names are the caller's to give
    unknown = httpx.get(f"{relay_url}/v1/audio/voices", params={"model": "no-such-tts"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"


def test_the_model_list_is_public_by_default_and_a_sent_key_is_still_checked(relay_url: str) -> None:
    anonymous = replay(relay_url, "models_without_key")
    assert anonymous.status_code == 200
    keyed = replay(relay_url, "models")
    assert {m["id"] for m in anonymous.json()["data"]} == {m["id"] for m in keyed.json()["data"]}
    wrong = replay(relay_url, "models", key="not a key")
    assert wrong.status_code == 401


def test_every_listed_model_has_a_human_name(relay_url: str) -> None:
    models = replay(relay_url, "models").json()["data"]
    assert all(model["name"] and model["name"] != model["id"] for model in models)
    leonardo = {m["id"]: m["name"] for m in models if m["owned_by"] == "leonardoai"}
    assert leonardo["e71a1c2f-4f80-4800-934f-2c68979d8cc8"] == "Leonardo Anime XL - LeonardoAI"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"public_models": False}, 401),
        ({"auth_mode": "keys", "onemin_api_keys": [KEY_A]}, 401),  # relay keys: private unless said
        ({"auth_mode": "keys", "onemin_api_keys": [KEY_A], "public_models": True}, 200),
    ],
)
def test_public_models_decides_for_the_list_and_the_probes(
    start_relay: Callable[..., BackgroundServer], settings: dict[str, Any], expected: int
) -> None:
    relay = start_relay(**settings)
    for name in ("models_without_key", "audio_models", "audio_voices"):
        response = replay(relay.url, name)
        assert response.status_code == expected, name
        if expected == 401:
            assert response.json()["error"]["code"] == "invalid_api_key"


# --- images at Open WebUI's default size -------------------------------------------------------------


def test_open_webuis_default_size_is_refused_by_default(relay_url: str, sim: SimulatorHandle) -> None:
    response = replay(relay_url, "image")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "size"
    assert "x-onemin-size-adjusted" not in response.headers
    assert not [r for r in sim.requests() if r["path"].startswith("/api/features")]


@pytest.mark.parametrize(
    ("model", "size", "adjusted"),
    [
        ("dall-e-3", "512x512", "1024x1024"),
        ("stable-diffusion-xl-1024-v1-0", "512x512", "1024x1024"),
        ("e71a1c2f-4f80-4800-934f-2c68979d8cc8", "1920x1080", "1024x768"),  # Leonardo: nearest shape
    ],
)
def test_image_size_adjust_maps_a_size_to_the_models_nearest_and_says_so(
    start_relay: Callable[..., BackgroundServer], sim: SimulatorHandle, model: str, size: str, adjusted: str
) -> None:
    relay = start_relay(image_size_adjust=True)
    response = replay(relay.url, "image", model=model, size=size)
    assert response.status_code == 200, response.text
    assert response.headers["x-onemin-size-adjusted"] == f"{size}->{adjusted}"
    assert response.json()["data"][0]["b64_json"]
    [sent] = [r["json"] for r in sim.requests() if r["path"].startswith("/api/features")]
    assert sent["promptObject"]["size"] == adjusted


def test_a_size_the_model_takes_is_not_adjusted(
    start_relay: Callable[..., BackgroundServer], sim: SimulatorHandle
) -> None:
    relay = start_relay(image_size_adjust=True)
    response = replay(relay.url, "image", size="1792x1024")
    assert response.status_code == 200
    assert "x-onemin-size-adjusted" not in response.headers


def test_an_empty_key_header_is_a_key_sent_and_refused(relay_url: str) -> None:
    for header in ("Authorization", "x-api-key"):
        assert httpx.get(f"{relay_url}/v1/models", headers={header: ""}).status_code == 401
