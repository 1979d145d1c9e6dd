"""Large and many-part bodies: parsed without stopping other requests, capped with OpenAI-style 400s, and
a bearer that cannot be a key refused before the body is read."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.types import Message

from onemin_relay.api.json_body import MAX_ARRAY_ITEMS, parse_json_object, parse_json_object_sliced
from onemin_relay.app import create_app
from onemin_relay.errors import OpenAIError
from onemin_relay.serving import BackgroundServer
from onemin_relay.translate.chat_wire import MAX_CONTENT_PARTS, MAX_MESSAGES
from tests.harness import KEY_A, relay_settings

AUTH = {"Authorization": f"Bearer {KEY_A}", "Content-Type": "application/json"}
# 20 MB within every limit, refused only for its last field (`n`), so nothing else awaits after the parse.
LARGE = json.dumps(
    {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "x" * 10_000}] * 2000,
        "n": 0,
    }
).encode()
MANY_MESSAGES = json.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"hello {i}"} for i in range(600_000)]}
).encode()  # about 20 MB


async def call(app: Any, method: str, path: str, body: bytes, finished: list[str]) -> None:
    """One request straight into the ASGI app; `finished` gets `path` once the response is complete."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {KEY_A}".encode()), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # the client stays connected
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            finished.append(path)

    await app(scope, receive, send)


async def test_health_answers_while_a_20_mb_body_is_parsed(
    simulator_server: BackgroundServer, tmp_path: Path
) -> None:
    """Both requests start on one event loop, the big one first: /health must not wait for its parse."""
    app = create_app(relay_settings(simulator_server.url, tmp_path))
    finished: list[str] = []
    async with app.router.lifespan_context(app):
        big = asyncio.create_task(call(app, "POST", "/v1/chat/completions", LARGE, finished))
        health = asyncio.create_task(call(app, "GET", "/health", b"", finished))
        await asyncio.gather(big, health)
    assert finished == ["/health", "/v1/chat/completions"]


def test_a_20_mb_body_of_600000_messages_is_a_400_naming_messages(relay_url: str) -> None:
    response = httpx.post(f"{relay_url}/v1/chat/completions", headers=AUTH, content=MANY_MESSAGES, timeout=60)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "user", "content": "hi"}] * (MAX_MESSAGES + 1), "messages"),
        (
            [{"role": "user", "content": [{"type": "text", "text": "a"}] * (MAX_CONTENT_PARTS + 1)}],
            "messages.0.content",
        ),
    ],
)
def test_messages_and_content_parts_are_capped(relay_url: str, messages: list[Any], param: str) -> None:
    body = {"model": "gpt-4o-mini", "messages": messages}
    response = httpx.post(f"{relay_url}/v1/chat/completions", headers=AUTH, json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_any_array_past_the_limit_is_a_400(relay_url: str) -> None:
    body = {"model": "gpt-4o-mini", "messages": [], "stop": ["x"] * (MAX_ARRAY_ITEMS + 1)}
    response = httpx.post(f"{relay_url}/v1/chat/completions", headers=AUTH, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "stop"


@pytest.mark.parametrize("token", [b"sk-\xe9t\xe9", b"sk key", b"x" * 600])
def test_a_bearer_that_cannot_be_a_key_is_refused_before_the_body_is_read(
    relay_url: str, token: bytes
) -> None:
    """The body is announced but never sent: the 401 must come anyway."""
    host, port = relay_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: 50000000\r\nAuthorization: Bearer "
            + token
            + b"\r\n\r\n"
        )
        head = connection.recv(65536)
    assert head.startswith(b"HTTP/1.1 401 ")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=30,
)


@given(
    document=st.dictionaries(st.text(max_size=5), json_values, max_size=5), indent=st.sampled_from([None, 2])
)
async def test_the_sliced_parser_reads_what_json_reads(document: dict[str, Any], indent: int | None) -> None:
    body = json.dumps(document, indent=indent, ensure_ascii=False).encode()
    assert await parse_json_object_sliced(body) == json.loads(body)


@given(
    document=st.dictionaries(st.text(max_size=5), json_values, max_size=5),
    big=st.integers(min_value=2**63 - 10, max_value=2**70)
    | st.integers(max_value=-(2**63) + 10, min_value=-(2**70)),
)
def test_a_small_body_reads_as_json_reads_it(document: dict[str, Any], big: int) -> None:
    """orjson reads small bodies; integers past 64 bits must still come out as the integers they are."""
    for body in (
        json.dumps(document, ensure_ascii=False).encode(),
        json.dumps({**document, "n": big}).encode(),
    ):
        parsed = parse_json_object(body)
        assert parsed == json.loads(body)
        assert [type(value) for value in parsed.values()] == [
            type(value) for value in json.loads(body).values()
        ]


def test_a_small_body_in_utf_16_reads_as_before() -> None:
    assert parse_json_object('{"model": "gpt-4o-mini"}'.encode("utf-16")) == {"model": "gpt-4o-mini"}


def test_a_body_nested_deeper_than_json_reads_is_refused_as_before() -> None:
    depth = 995  # orjson reads up to 1024 levels; `json`, which decides, cannot go as deep here
    with pytest.raises(OpenAIError) as caught:
        parse_json_object(b'{"a":' + b"[" * depth + b"]" * depth + b"}")
    assert caught.value.status == 400
    assert "could not parse" in caught.value.message


@pytest.mark.parametrize(
    "body", [b'{"a": 1} x', b'{"a" 1}', b'{"a": [1 2]}', b'{"a": 1,}', b"[1]", b'{"a": "\\ud800"}']
)
async def test_the_sliced_parser_refuses_what_the_relay_refuses(body: bytes) -> None:
    with pytest.raises(OpenAIError) as caught:
        await parse_json_object_sliced(body)
    assert caught.value.status == 400


def send_then_read(url: str, head: bytes, body: bytes) -> bytes:
    """What a naive client (urllib, for one) does: write the whole request, and only then read the answer;
    `Connection: close` makes the server close right after answering."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        length = f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        connection.sendall(head + length + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer:
                break
        return answer


@pytest.mark.parametrize("size", [54_000, 300_000, 12_000_000])
def test_a_client_writing_an_over_limit_body_before_reading_gets_the_413(
    start_relay: Callable[..., BackgroundServer], size: int
) -> None:
    relay = start_relay(max_request_bytes=50_000)
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + KEY_A.encode() + b"\r\n"
    )
    for _ in range(3):
        assert send_then_read(relay.url, head, b"x" * size).startswith(b"HTTP/1.1 413 ")


def test_a_client_writing_its_body_to_a_bad_key_gets_the_401(relay_url: str) -> None:
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer a b\r\n"
    assert send_then_read(relay_url, head, b"{" + b" " * 12_000_000 + b"}").startswith(b"HTTP/1.1 401 ")
