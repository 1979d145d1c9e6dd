"""Rate limits: the middleware in a small app on real sockets, counting in memory, Redis or memcached."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import openai
import pytest
import redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from onemin_relay.config import Settings
from onemin_relay.ratelimit import RateLimitMiddleware, openai_duration
from onemin_relay.serving import BackgroundServer
from tests.servers import ServerProcess

RESET_FORMAT = re.compile(r"^(\d+ms|\d+(\.\d+)?s|\d+m\d+s|\d+h\d+m\d+s)$")


async def model_list(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": []})


async def chat(request: Request) -> Response:
    return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion"})


def limited_app(**overrides: Any) -> Starlette:
    """A stand-in for the relay: a few routes behind CORS and the rate-limit middleware."""
    settings = Settings(_env_file=None, **overrides)
    return Starlette(
        routes=[
            Route("/health", model_list, methods=["GET"]),
            Route("/v1/models", model_list, methods=["GET"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ],
        middleware=[
            Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"]),
            Middleware(RateLimitMiddleware, settings=settings),
        ],
    )


Serve = Callable[..., str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    with ExitStack() as stack:

        def start(**overrides: Any) -> str:
            server: BackgroundServer = stack.enter_context(BackgroundServer(limited_app(**overrides)))
            return server.url

        yield start


def new_key() -> str:
    return f"sk-test-{uuid.uuid4().hex}"


def get_models(url: str, key: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"})


def post_chat(url: str, key: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json={})


def test_every_v1_response_reports_the_limit(serve: Serve) -> None:
    url, key = serve(rate_limit="5/minute"), new_key()

    first, second = get_models(url, key), get_models(url, key)

    assert first.status_code == second.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "5"
    assert first.headers["x-ratelimit-remaining-requests"] == "4"
    assert second.headers["x-ratelimit-remaining-requests"] == "3"
    assert RESET_FORMAT.match(second.headers["x-ratelimit-reset-requests"])


def test_over_the_limit_is_an_openai_429(serve: Serve) -> None:
    url, key = serve(rate_limit="2/minute"), new_key()
    assert [get_models(url, key).status_code for _ in range(2)] == [200, 200]

    refused = get_models(url, key)

    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["type"] == "requests"
    assert error["code"] == "rate_limit_exceeded"
    assert error["param"] is None
    assert "2 per 1 minute" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-limit-requests"] == "2"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert RESET_FORMAT.match(refused.headers["x-ratelimit-reset-requests"])


def test_the_openai_sdk_sees_a_rate_limit_error(serve: Serve) -> None:
    url = serve(rate_limit="1/minute")
    with openai.OpenAI(base_url=f"{url}/v1", api_key=new_key(), max_retries=0) as client:
        client.models.list()
        with pytest.raises(openai.RateLimitError) as raised:
            client.models.list()
    assert raised.value.code == "rate_limit_exceeded"


def test_each_key_has_its_own_count(serve: Serve) -> None:
    url, alice, bob = serve(rate_limit="1/minute"), new_key(), new_key()
    assert get_models(url, alice).status_code == 200
    assert get_models(url, alice).status_code == 429
    assert get_models(url, bob).status_code == 200


def test_health_and_cors_preflights_are_not_counted(serve: Serve) -> None:
    url, key = serve(rate_limit="2/minute"), new_key()
    preflight = {"Origin": "https://chat.example", "Access-Control-Request-Method": "POST"}
    for _ in range(3):
        health = httpx.get(f"{url}/health", headers={"Authorization": f"Bearer {key}"})
        assert health.status_code == 200
        assert "x-ratelimit-limit-requests" not in health.headers
        assert httpx.options(f"{url}/v1/chat/completions", headers=preflight).status_code == 200

    assert get_models(url, key).headers["x-ratelimit-remaining-requests"] == "1"


def test_without_a_configured_limit_nothing_is_added(serve: Serve) -> None:
    url, key = serve(), new_key()
    responses = [get_models(url, key) for _ in range(3)]
    assert all(r.status_code == 200 and "x-ratelimit-limit-requests" not in r.headers for r in responses)


def test_a_per_ip_limit_counts_all_keys_together(serve: Serve) -> None:
    url = serve(rate_limit_per_ip="2/minute")
    assert get_models(url, new_key()).status_code == 200
    assert get_models(url, new_key()).status_code == 200
    refused = get_models(url, new_key())
    assert refused.status_code == 429
    assert "IP address" in refused.json()["error"]["message"]


def test_the_upstream_guard_counts_only_calls_that_reach_1min_ai(serve: Serve) -> None:
    url, key = serve(upstream_rate_guard=True, upstream_rate_guard_limit="2/minute"), new_key()
    listing = get_models(url, key)  # answered from the relay: not counted, but reported
    assert listing.headers["x-ratelimit-remaining-requests"] == "2"
    assert [post_chat(url, key).status_code for _ in range(2)] == [200, 200]

    refused = post_chat(url, key)

    assert refused.status_code == 429
    assert "1min.ai" in refused.json()["error"]["message"]
    assert get_models(url, key).status_code == 200


# Windowed strategies (and memcached, which only has those) reset at window boundaries: a day-long window
# keeps a boundary from falling inside a test.
@pytest.mark.parametrize("strategy", ["moving-window", "fixed-window", "sliding-window-counter"])
def test_each_strategy_enforces_the_limit(serve: Serve, strategy: str) -> None:
    url, key = serve(rate_limit="3/day", rate_limit_strategy=strategy), new_key()
    assert [get_models(url, key).status_code for _ in range(4)] == [200, 200, 200, 429]


@pytest.mark.parametrize("kind", ["redis", "memcached"])
def test_relays_sharing_a_store_share_one_count(
    serve: Serve, kind: str, request: pytest.FixtureRequest
) -> None:
    server: ServerProcess = request.getfixturevalue(f"{kind}_server")
    one, two = (
        serve(rate_limit="4/day", state_url=server.url),
        serve(rate_limit="4/day", state_url=server.url),
    )
    key = new_key()

    statuses = [get_models(relay, key).status_code for relay in (one, two, one, two, one)]

    assert statuses == [200, 200, 200, 200, 429]
    assert get_models(two, key).status_code == 429


def test_counts_are_stored_under_the_key_hash_never_the_key(serve: Serve, own_redis: ServerProcess) -> None:
    url, key = serve(rate_limit="4/minute", state_url=own_redis.url), new_key()
    get_models(url, key)
    with redis.Redis.from_url(own_redis.url) as raw:
        stored = b" ".join(raw.keys("*"))
    assert stored  # the count is in Redis…
    assert key.encode() not in stored  # …and the key itself is nowhere in it


@pytest.mark.parametrize("kind", ["redis", "memcached"])
def test_a_counting_store_outage_lets_requests_through(
    serve: Serve, kind: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    store: ServerProcess = request.getfixturevalue(f"own_{kind}")
    url, key = serve(rate_limit="100/day", state_url=store.url), new_key()
    assert "x-ratelimit-remaining-requests" in get_models(url, key).headers

    store.stop()
    with caplog.at_level(logging.WARNING, logger="onemin_relay.ratelimit"):
        during = [get_models(url, key) for _ in range(3)]
    assert [r.status_code for r in during] == [200, 200, 200]
    assert "rate-limit store unavailable" in caplog.text

    store.start()
    deadline = time.monotonic() + 15
    while "x-ratelimit-remaining-requests" not in get_models(url, key).headers:
        assert time.monotonic() < deadline, "limits did not come back after the store recovered"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.12, "120ms"), (1, "1s"), (8.64, "8.64s"), (59.999, "1m0s"), (360, "6m0s"), (3723, "1h2m3s")],
)
def test_reset_times_use_openais_duration_format(seconds: float, text: str) -> None:
    assert openai_duration(seconds) == text
