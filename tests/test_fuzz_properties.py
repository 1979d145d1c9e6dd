"""The property every route keeps, whatever a client sends: no 5xx of the relay's own making, and every
refusal an OpenAI-shaped error.

Requests start from a valid body for the route (its fields read from the route's request model), then
Hypothesis changes one value anywhere in it to something hostile: text with lone surrogates or control
characters, numbers Python will not convert (5000-digit integers, NaN, 1e999), deep nesting, wrong types,
unknown fields; or sends the body as the wrong content type, as multipart with hostile fields and file
names, or as bytes that are not JSON at all. Path and query parameters get the same treatment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from onemin_relay.api.audio import SpeechBody
from onemin_relay.api.images import GenerationBody, JsonEditBody
from onemin_relay.serving import BackgroundServer
from onemin_relay.translate.chat_wire import ChatCompletionRequest
from tests.fuzzing import AUTH, assert_not_broken, relay_operations

PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJ"
    "RU5ErkJggg=="
)

# A valid request per JSON route, and the model it is read into (whose fields get hostile values too).
VALID: dict[str, tuple[dict[str, Any], type[BaseModel] | None]] = {
    "/v1/chat/completions": (
        {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "be brief"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "hi"},
                        {"type": "image_url", "image_url": {"url": PNG}},
                    ],
                },
            ],
            "max_tokens": 5,
        },
        ChatCompletionRequest,
    ),
    "/v1/images/generations": ({"model": "dall-e-3", "prompt": "a cat", "n": 1}, GenerationBody),
    "/v1/images/edits": (
        {"model": "gpt-image-1", "prompt": "a hat", "images": [{"image_url": PNG}]},
        JsonEditBody,
    ),
    "/v1/audio/speech": ({"model": "tts-1", "input": "hi", "voice": "alloy"}, SpeechBody),
}

# Raw JSON text that Python's encoder will not write, put in place of these markers after encoding.
RAW = {
    '"\\u0000raw:bigint"': "9" * 5000,
    '"\\u0000raw:nan"': "NaN",
    '"\\u0000raw:inf"': "1e999",
    '"\\u0000raw:deep"': "[" * 5000 + "]" * 5000,
}

hostile_text = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
    st.text(alphabet=st.characters(max_codepoint=0x20), max_size=10),
    st.sampled_from(
        ["", " ", "\x00", "http://127.0.0.1:1/\x00", "file:///etc/passwd", "¹", "-1", "x" * 2000]
    ),
)
hostile_leaf = st.one_of(
    hostile_text,
    st.just("x" * 70_000),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.sampled_from(list(RAW)).map(lambda marker: "\x00raw:" + marker.split(":")[1].rstrip('"')),
)
hostile_value = st.recursive(
    hostile_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=8,
)


def encoded(body: Any) -> bytes:
    text = json.dumps(body)
    for marker, raw in RAW.items():
        text = text.replace(marker, raw)
    return text.encode()


def places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value, the value itself first."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += places(item, (*path, index))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    if isinstance(value, dict):
        return {**value, path[0]: replaced(value[path[0]], path[1:], new)}
    return [replaced(item, path[1:], new) if index == path[0] else item for index, item in enumerate(value)]


@st.composite
def json_body(draw: st.DrawFn, route: str) -> bytes:
    valid, model = VALID.get(route, ({}, None))
    fields = sorted(model.model_fields) if model is not None else []
    how = draw(st.sampled_from(["replace", "field", "whole", "garbage"]))
    if how == "replace":
        return encoded(replaced(valid, draw(st.sampled_from(places(valid))), draw(hostile_value)))
    if how == "field":
        name = draw(st.sampled_from(fields) if fields else hostile_text)
        return encoded({**valid, name: draw(hostile_value)})
    if how == "whole":
        return encoded(draw(hostile_value))
    return draw(st.binary(max_size=64))


@st.composite
def multipart_body(draw: st.DrawFn, route: str) -> tuple[dict[str, Any], dict[str, Any]]:
    model = VALID.get(route, ({}, None))[1]
    names = [*(sorted(model.model_fields) if model else []), "purpose", "model", "prompt", "n", "size"]
    texts = {draw(st.sampled_from(names)): draw(hostile_text) for _ in range(draw(st.integers(0, 3)))}
    data = {name: value.encode("utf-8", "surrogatepass") for name, value in texts.items()}
    files = {}
    if draw(st.booleans()):
        filename = draw(hostile_text).encode("utf-8", "replace").decode()
        content_type = draw(st.sampled_from(["image/png", "audio/mpeg", "text/plain", "", "x/\x7f"]))
        files[draw(st.sampled_from(["file", "image", "image[]", "mask"]))] = (
            filename,
            draw(st.binary(max_size=64)),
            content_type,
        )
    return data, files


def concrete(path: str, segment: str) -> str:
    return re.sub(r"\{[^}]+\}", quote(segment.encode("utf-8", "surrogatepass"), safe=""), path)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.mark.parametrize(("method", "route"), relay_operations())
@given(data=st.data())
def test_no_request_gets_a_5xx_or_a_non_openai_error(
    relay_server: BackgroundServer, http: httpx.Client, method: str, route: str, data: st.DataObject
) -> None:
    path = concrete(route, data.draw(hostile_text, label="path parameter"))
    query = data.draw(
        st.dictionaries(
            st.sampled_from(["limit", "order", "after", "purpose", "x"]), hostile_text, max_size=3
        )
    )
    params = {key: value.encode("utf-8", "surrogatepass") for key, value in query.items()}
    request: dict[str, Any] = {"params": params}
    if method == "POST":
        if data.draw(st.booleans(), label="as JSON"):
            request["content"] = data.draw(json_body(route), label="JSON body")
            request["headers"] = {**AUTH, "Content-Type": "application/json"}
        else:
            request["data"], request["files"] = data.draw(multipart_body(route), label="multipart body")
            request["headers"] = AUTH
    else:
        request["headers"] = AUTH
    response = http.request(method, f"{relay_server.url}{path}", **request)
    assert_not_broken(
        response.status_code, response.headers.get("content-type", ""), response.content, f"{method} {path}"
    )
