"""A client that hangs up before its answer is complete frees the upstream call made for it."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from tests.harness import KEY_A, SimulatorHandle
from tests.test_app import FormattedLines


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 20  # a bound, not a measurement: it only keeps a failure from hanging
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def upstream_chat(sim: SimulatorHandle) -> list[dict[str, Any]]:
    return [call for call in sim.requests() if call["method"] == "POST"]


@contextmanager
def access_lines() -> Iterator[FormattedLines]:
    """The relay's access lines logged while the block runs."""
    access, access_log = FormattedLines(), logging.getLogger("onemin_relay.access")
    access_log.addHandler(access)
    access_log.setLevel(logging.INFO)
    try:
        yield access
    finally:
        access_log.removeHandler(access)
        access_log.setLevel(logging.NOTSET)


@contextmanager
def chat_on_a_socket(relay_url: str, body: dict[str, Any]) -> Iterator[socket.socket]:
    """A chat request sent on a raw socket, closed (the client hanging up) when the block ends."""
    content = json.dumps(body).encode()
    address = urlsplit(relay_url)
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Authorization: Bearer {KEY_A}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(content)}\r\n\r\n"
    ).encode() + content
    with socket.create_connection((address.hostname, address.port)) as client:
        client.sendall(request)
        yield client


def chat_line(access: FormattedLines) -> dict[str, Any]:
    wait_for(lambda: access.lines, "no access line")
    [line] = [line for line in access.lines if line.get("path") == "/v1/chat/completions"]
    return line


def test_a_client_that_hangs_up_cancels_its_upstream_call(relay_url: str, sim: SimulatorHandle) -> None:
    slow = {"role": "user", "content": "hi [[sim:slow-first-byte=60000]]"}
    with access_lines() as access:
        with chat_on_a_socket(relay_url, {"model": "gpt-4o-mini", "messages": [slow]}):
            wait_for(lambda: upstream_chat(sim), "the call never reached upstream")
        # The client is gone before any answer: the relay hangs up on upstream too, long before the
        # simulator's minute-long first byte…
        wait_for(
            lambda: upstream_chat(sim)[0].get("client_disconnected"), "the upstream call was not abandoned"
        )
        # …and its access line says the client closed the request (not a 500 nobody got).
        assert chat_line(access)["status"] == 499


def test_a_client_that_hangs_up_mid_stream_ends_the_stream_with_its_status(relay_url: str) -> None:
    slow = {"role": "user", "content": "a long answer please [[sim:delay=60000]]"}
    with access_lines() as access:
        with chat_on_a_socket(
            relay_url, {"model": "gpt-4o-mini", "messages": [slow], "stream": True}
        ) as client:
            received = b""
            while b'"content":"' not in received.partition(b"\r\n\r\n")[2].replace(b'"content":""', b""):
                received += client.recv(65536)  # up to the first chunk with text; the next is a minute away
        # The stream ends when its client goes, not a minute per chunk later, and its access line keeps
        # the status its client was answered with.
        line = chat_line(access)
    assert line["status"] == 200
    assert line["stream"] is True
