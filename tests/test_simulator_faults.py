"""Simulator: every fault switch, set per request (header, magic word) and per process (config, one-shots)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from onemin_relay.simulator.answers import expected_answer
from onemin_relay.simulator.app import create_simulator_app
from onemin_relay.simulator.config import SimulatorConfig
from onemin_relay.simulator.faults import parse_faults
from tests.harness import KEY_A, KNOWN_KEYS, SimulatorHandle

CHAT = "/api/chat-with-ai"
STREAM = "/api/chat-with-ai?isStreaming=true"


def chat_body(prompt: str = "Tell me about AI", model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {"type": "UNIFY_CHAT_WITH_AI", "model": model, "promptObject": {"prompt": prompt}}


IMAGE_BODY = {"type": "IMAGE_GENERATOR", "model": "dall-e-3", "promptObject": {"prompt": "a red apple"}}


@pytest.fixture
def http(sim: SimulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, headers={"API-KEY": KEY_A}, timeout=30) as client:
        yield client


def events_of(client: httpx.Client, body: dict[str, Any], **headers: str) -> list[tuple[str, Any]]:
    with connect_sse(client, "POST", STREAM, json=body, headers=headers) as source:
        assert source.response.status_code == 200
        return [(event.event, json.loads(event.data)) for event in source.iter_sse()]


def text_of(events: list[tuple[str, Any]]) -> str:
    return "".join(data["content"] for name, data in events if name == "content")


# --- how faults are switched on -------------------------------------------------------------------


def test_header_magic_word_and_config_all_switch_faults_on(sim: SimulatorHandle, http: httpx.Client) -> None:
    by_header = http.post(CHAT, json=chat_body(), headers={"X-Sim-Fault": "http-503"})
    by_magic_word = http.post(CHAT, json=chat_body("hi [[sim:http-503]]"))
    sim.configure(faults=["http-503"])
    by_config = http.post(CHAT, json=chat_body())
    sim.configure(faults=[])
    recovered = http.post(CHAT, json=chat_body())
    assert [r.status_code for r in (by_header, by_magic_word, by_config, recovered)] == [503, 503, 503, 200]


def test_magic_words_anywhere_in_the_prompt_object(http: httpx.Client) -> None:
    body = {
        "type": "IMAGE_GENERATOR",
        "model": "dall-e-3",
        "promptObject": {"prompt": "x", "style": "[[sim:http-500]]"},
    }
    assert http.post("/api/features", json=body).status_code == 500


def test_one_shot_faults_fail_the_next_n_calls_then_recover(sim: SimulatorHandle, http: httpx.Client) -> None:
    sim.set_fault("http-503", times=2)
    statuses = [http.post(CHAT, json=chat_body()).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_one_shot_faults_can_target_a_path(sim: SimulatorHandle, http: httpx.Client) -> None:
    armed = sim.http.post("/_sim/faults", json={"fault": "http-502", "times": 1, "path": "/api/features"})
    assert armed.json()["armed"] == [
        {"fault": "http-502", "value": None, "remaining": 1, "path": "/api/features"}
    ]
    assert http.post(CHAT, json=chat_body()).status_code == 200
    assert http.post("/api/features", json=IMAGE_BODY).status_code == 502
    assert http.post("/api/features", json=IMAGE_BODY).status_code == 200


def test_stream_faults_wait_for_a_stream(sim: SimulatorHandle, http: httpx.Client) -> None:
    sim.set_fault("error-mid-stream")
    assert http.post(CHAT, json=chat_body()).status_code == 200  # a JSON call does not use the shot
    names = [name for name, _ in events_of(http, chat_body())]
    assert names[-1] == "error"
    assert [name for name, _ in events_of(http, chat_body())][-1] == "done"


def test_unknown_faults_are_refused_except_in_prompts(sim: SimulatorHandle, http: httpx.Client) -> None:
    header = http.post(CHAT, json=chat_body(), headers={"X-Sim-Fault": "explode"})
    armed = sim.http.post("/_sim/faults", json={"fault": "explode"})
    configured = sim.http.post("/_sim/config", json={"faults": ["explode"]})
    prompt = http.post(CHAT, json=chat_body("[[sim:explode]]"))
    assert header.status_code == 400
    assert "unknown fault" in header.json()["error"]["message"]
    assert armed.status_code == 400
    assert configured.status_code == 400
    assert prompt.status_code == 200


def test_fault_syntax() -> None:
    assert parse_faults("delay=20, crlf,split-bytes") == {"delay": 20, "crlf": None, "split-bytes": 1}
    assert parse_faults("http-429") == {"http-429": 1}
    for bad in ("crlf=1", "delay=abc", "delay=-5", "nope"):
        with pytest.raises(ValueError, match=r"\S"):
            parse_faults(bad)


# --- HTTP-level faults ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [CHAT, "/api/features", "/api/conversations"])
def test_http_5xx_faults(http: httpx.Client, path: str) -> None:
    for status in (500, 502, 503):
        response = http.post(path, json=chat_body(), headers={"X-Sim-Fault": f"http-{status}"})
        assert response.status_code == status
    assert http.post(path, json=chat_body(), headers={"X-Sim-Fault": "http-500"}).json() == {
        "statusCode": 500,
        "message": "Internal server error",
    }
    bad_gateway = http.post(path, json=chat_body(), headers={"X-Sim-Fault": "http-502"})
    assert bad_gateway.headers["content-type"].startswith("text/html")


def test_cloudflare_522_is_an_html_page(http: httpx.Client) -> None:
    response = http.post(CHAT, json=chat_body("[[sim:cloudflare-522]]"))
    assert response.status_code == 522
    assert response.headers["content-type"].startswith("text/html")
    assert "Error code 522" in response.text
    with pytest.raises(ValueError, match=r"\S"):
        response.json()


def test_http_429_fault_is_rate_limited_with_retry_after(http: httpx.Client) -> None:
    default = http.post(CHAT, json=chat_body("[[sim:http-429]]"))
    explicit = http.post(CHAT, json=chat_body("[[sim:http-429=7]]"))
    assert default.status_code == 429
    assert default.headers["retry-after"] == "1"
    assert explicit.headers["retry-after"] == "7"
    assert explicit.json() == {
        "success": False,
        "error": {"code": "RATE_LIMITED", "message": "Too many requests"},
    }


def test_slow_first_byte_delays_the_response_head(http: httpx.Client) -> None:
    with pytest.raises(httpx.ReadTimeout):
        http.post(CHAT, json=chat_body("[[sim:slow-first-byte=1500]]"), timeout=httpx.Timeout(30, read=0.3))


def test_insufficient_credits_fault_uses_the_endpoint_shape(http: httpx.Client) -> None:
    chat = http.post(CHAT, json=chat_body("[[sim:insufficient-credits]]"))
    feature = http.post("/api/features", json=IMAGE_BODY, headers={"X-Sim-Fault": "insufficient-credits"})
    assert chat.status_code == 402
    assert chat.json()["error"]["code"] == "INSUFFICIENT_CREDITS"
    assert feature.status_code == 402
    assert feature.json()["errorCode"] == "INSUFFICIENT_CREDITS"


# --- stream faults --------------------------------------------------------------------------------


def test_delay_between_chunks_stalls_the_stream(http: httpx.Client) -> None:
    body = chat_body("[[sim:delay=1500]]")
    timeout = httpx.Timeout(30, read=0.3)
    with (
        pytest.raises(httpx.ReadTimeout),
        http.stream("POST", STREAM, json=body, timeout=timeout) as response,
    ):
        for _ in response.iter_bytes():
            pass


def test_duplicate_final_repeats_the_full_text(http: httpx.Client) -> None:
    prompt = "[[sim:duplicate-final]] hello"
    events = events_of(http, chat_body(prompt))
    contents = [data["content"] for name, data in events if name == "content"]
    answer = expected_answer(prompt)
    assert contents[-1] == answer
    assert "".join(contents[:-1]) == answer
    assert [name for name, _ in events][-2:] == ["result", "done"]


def test_error_mid_stream_after_partial_content(sim: SimulatorHandle, http: httpx.Client) -> None:
    prompt = "[[sim:error-mid-stream]] please"
    events = events_of(http, chat_body(prompt))
    names = [name for name, _ in events]
    assert names[-1] == "error"
    assert "result" not in names
    assert "done" not in names
    assert events[-1][1] == {"error": "Upstream provider returned an error"}
    partial = text_of(events)
    assert partial
    assert expected_answer(prompt).startswith(partial)
    assert partial != expected_answer(prompt)

    sim.configure(done_after_error=True)
    assert [name for name, _ in events_of(http, chat_body(prompt))][-2:] == ["error", "done"]


def test_drop_mid_stream_aborts_the_connection(http: httpx.Client) -> None:
    received: list[bytes] = []

    def read_all() -> None:
        with http.stream("POST", STREAM, json=chat_body("[[sim:drop-mid-stream]]")) as response:
            assert response.status_code == 200
            received.extend(response.iter_bytes())

    with pytest.raises(httpx.RemoteProtocolError):
        read_all()
    assert b"event: content" in b"".join(received)
    assert b"event: result" not in b"".join(received)


def test_crlf_framing(http: httpx.Client) -> None:
    with http.stream("POST", STREAM, json=chat_body(), headers={"X-Sim-Fault": "crlf"}) as response:
        raw = response.read()
    assert b"\r\n\r\n" in raw
    assert raw.replace(b"\r\n", b"").count(b"\n") == 0
    assert text_of(events_of(http, chat_body(), **{"X-Sim-Fault": "crlf"})) == expected_answer(
        "Tell me about AI"
    )


def test_keepalive_comments_between_events(http: httpx.Client) -> None:
    with http.stream("POST", STREAM, json=chat_body(), headers={"X-Sim-Fault": "keepalive"}) as response:
        raw = response.read().decode()
    assert raw.count(": keep-alive\n\n") >= 3
    assert text_of(events_of(http, chat_body(), **{"X-Sim-Fault": "keepalive"})) == expected_answer(
        "Tell me about AI"
    )


async def body_writes(app: Any, body: dict[str, Any], fault: str) -> list[bytes]:
    """Run one streaming call through the ASGI interface and return each body write the app made."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/chat-with-ai",
        "raw_path": b"/api/chat-with-ai",
        "query_string": b"isStreaming=true",
        "root_path": "",
        "headers": [(b"host", b"sim.test"), (b"api-key", KEY_A.encode()), (b"x-sim-fault", fault.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("sim.test", 80),
    }
    incoming = [{"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}]
    writes: list[bytes] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await asyncio.Event().wait()  # never disconnects
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            writes.append(message["body"])

    await app(scope, receive, send)
    return writes


async def test_split_bytes_cuts_utf8_characters_across_writes() -> None:
    app = create_simulator_app(SimulatorConfig(api_keys=KNOWN_KEYS))
    writes = await body_writes(app, chat_body("héllo"), "split-bytes")

    assert all(len(write) == 1 for write in writes)
    undecodable = 0
    for write in writes:
        try:
            write.decode("utf-8")
        except UnicodeDecodeError:
            undecodable += 1
    assert undecodable > 0
    whole = b"".join(writes).decode("utf-8")
    assert '"content":"' in whole
    assert "event: done" in whole

    wider = await body_writes(app, chat_body("héllo"), "split-bytes=3")
    assert max(len(write) for write in wider) == 3


# --- record faults --------------------------------------------------------------------------------


def test_failed_status_in_json_records(sim: SimulatorHandle, http: httpx.Client) -> None:
    chat = http.post(CHAT, json=chat_body("[[sim:failed-status]]")).json()["aiRecord"]
    feature = http.post("/api/features", json=IMAGE_BODY, headers={"X-Sim-Fault": "failed-status"}).json()[
        "aiRecord"
    ]
    assert chat["status"] == "FAILED"
    assert chat["aiRecordDetail"]["resultObject"] == []
    assert feature["status"] == "FAILED"
    assert feature["aiRecordDetail"]["resultObject"] == []
    assert "temporaryUrl" not in feature

    sim.configure(failed_status="FAILURE")
    assert http.post(CHAT, json=chat_body("[[sim:failed-status]]")).json()["aiRecord"]["status"] == "FAILURE"


def test_failed_status_in_a_stream_result(http: httpx.Client) -> None:
    events = events_of(http, chat_body("[[sim:failed-status]]"))
    assert [name for name, _ in events] == ["result", "done"]
    assert events[0][1]["aiRecord"]["status"] == "FAILED"


def test_zero_tokens(http: httpx.Client) -> None:
    metadata = http.post(CHAT, json=chat_body("[[sim:zero-tokens]] hi")).json()["aiRecord"]["metadata"]
    assert metadata["inputToken"] == metadata["outputToken"] == metadata["totalToken"] == 0
    assert metadata["credit"] > 0


def test_length_pads_the_answer(http: httpx.Client) -> None:
    prompt = "[[sim:crlf,length=2000]] long please"
    answer = http.post(CHAT, json=chat_body(prompt)).json()["aiRecord"]["aiRecordDetail"]["resultObject"][0]
    assert answer == expected_answer(prompt)
    assert len(answer) >= 2000


def test_unclosed_magic_word_openings_neither_stall_nor_hide_a_magic_word() -> None:
    """Many `[[sim:` openings without a closing `]]` made both magic-word scans quadratic (a 300 kB prompt
    blocked the simulator's event loop for minutes), and an unclosed opening swallowed the magic word after
    it. The scan runs in a child process because a regex stuck in C cannot be interrupted; its timeout only
    tells a hang from an answer."""
    script = """
import json
from onemin_relay.simulator.answers import expected_answer
from onemin_relay.simulator.faults import faults_in_body
hostile = "[[sim:zero-tokens]] " + "[[sim:" * 50_000
after_junk = "[[sim: [[sim:crlf,length=300]]"
print(json.dumps({
    "hostile": faults_in_body({"promptObject": {"prompt": hostile}}),
    "hostile_answer": expected_answer(hostile)[:30],
    "after_junk": faults_in_body({"promptObject": {"prompt": after_junk}}),
    "after_junk_answer_length": len(expected_answer(after_junk)),
}))
"""
    try:
        child = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
        )
    except subprocess.TimeoutExpired:
        pytest.fail("magic-word scan did not finish")
    outcome = json.loads(child.stdout)
    assert outcome["hostile"] == {"zero-tokens": None}
    assert outcome["hostile_answer"].startswith("«[[sim:zero-tokens]] [[sim:")
    assert outcome["after_junk"] == {"crlf": None}
    assert outcome["after_junk_answer_length"] >= 300
