"""Every upload endpoint answers malformed multipart bodies with a 4xx OpenAI error, never a 500."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request
from starlette.types import Message, Scope

from onemin_relay.api.uploads import multipart_form
from onemin_relay.errors import OpenAIError
from tests.harness import KEY_A, SimulatorHandle

UPLOAD_ENDPOINTS = (
    "/v1/files",
    "/v1/images/variations",
    "/v1/images/edits",
    "/v1/audio/transcriptions",
    "/v1/audio/translations",
)
BOUNDARY = "xYz"
MALFORMED: dict[str, tuple[str, bytes]] = {
    "no boundary": ("multipart/form-data", b"--xYz\r\n\r\n"),
    "empty body": (f"multipart/form-data; boundary={BOUNDARY}", b""),
    "garbage": (f"multipart/form-data; boundary={BOUNDARY}", bytes(range(256)) * 4),
    "truncated part": (
        f"multipart/form-data; boundary={BOUNDARY}",
        b'--xYz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF',
    ),
    "part without name": (
        f"multipart/form-data; boundary={BOUNDARY}",
        b'--xYz\r\nContent-Disposition: form-data; filename="a.png"\r\n\r\nx\r\n--xYz--\r\n',
    ),
    "only closing boundary": (f"multipart/form-data; boundary={BOUNDARY}", b"--xYz--\r\n"),
    "not multipart": ("text/plain", b"file=a.png"),
    "json instead": ("application/json", b'{"file": "a.png"}'),
}


@pytest.mark.parametrize("endpoint", UPLOAD_ENDPOINTS)
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_uploads_are_openai_4xx(
    relay_url: str, sim: SimulatorHandle, endpoint: str, case: str
) -> None:
    content_type, body = MALFORMED[case]
    response = httpx.post(
        f"{relay_url}{endpoint}",
        content=body,
        headers={"Authorization": f"Bearer {KEY_A}", "Content-Type": content_type},
    )
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    assert not any(entry["path"] in ("/api/features", "/api/assets") for entry in sim.requests())


@pytest.mark.parametrize("endpoint", UPLOAD_ENDPOINTS)
def test_uploads_need_a_key(relay_url: str, endpoint: str) -> None:
    response = httpx.post(f"{relay_url}{endpoint}", files={"file": ("a.wav", b"RIFF")})
    assert response.status_code == 401


def test_a_body_cut_inside_a_file_part_is_refused_as_such(relay_url: str, sim: SimulatorHandle) -> None:
    body = (
        b'--xYz\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'
        b'--xYz\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nonly the start'
    )
    response = httpx.post(
        f"{relay_url}/v1/files",
        content=body,
        headers={
            "Authorization": f"Bearer {KEY_A}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        },
    )
    assert response.status_code == 400
    assert "ended in the middle of a file part" in response.json()["error"]["message"]
    assert sim.requests() == []


async def test_an_oversized_file_part_is_refused_as_it_arrives() -> None:
    """The per-file limit is enforced while the body streams in, not after a many-file form is spooled."""
    limit, chunk, total = 1000, 16 * 1024, 8 * 1024 * 1024
    head = (
        b'--xYz\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx\r\n'
        b'--xYz\r\nContent-Disposition: form-data; name="image[]"; filename="a.png"\r\n\r\n'
    )
    sent = 0

    async def receive() -> Message:
        nonlocal sent
        body = head if sent == 0 else bytes(chunk)
        sent += len(body)
        return {"type": "http.request", "body": body, "more_body": sent < total}

    scope: Scope = {
        "type": "http",
        "method": "POST",
        "headers": [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())],
    }
    with pytest.raises(OpenAIError) as caught:
        async with multipart_form(Request(scope, receive), max_file_bytes=limit, max_files=17):
            pass
    assert (caught.value.status, caught.value.param) == (413, "image")
    assert sent <= len(head) + limit + chunk  # far below what 17 files of `limit` bytes may add up to


async def test_a_declared_length_over_the_cap_is_refused_unread() -> None:
    async def receive() -> Message:
        raise AssertionError("the body was read")

    scope: Scope = {
        "type": "http",
        "method": "POST",
        "headers": [
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
            (b"content-length", str(10 * 1024 * 1024).encode()),
        ],
    }
    with pytest.raises(OpenAIError) as caught:
        async with multipart_form(Request(scope, receive), max_file_bytes=1000):
            pass
    assert caught.value.status == 413
