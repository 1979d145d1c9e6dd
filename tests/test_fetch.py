"""The guarded URL fetcher: what it refuses, what it bounds, and that it follows redirects safely."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
from collections.abc import AsyncIterator, Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from onemin_relay import fetch as fetch_module
from onemin_relay.fetch import FetchError, FetchPolicy, fetch, is_public
from onemin_relay.serving import BackgroundServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
OPEN = FetchPolicy(max_bytes=10_000, timeout=5, allow_private=True)
GUARDED = FetchPolicy(max_bytes=10_000, timeout=5)


async def image(request: Request) -> Response:
    return Response(PNG, media_type="image/png", headers={"x-seen-host": request.headers.get("host", "")})


async def host(request: Request) -> Response:
    return Response(request.headers.get("host", "").encode(), media_type="image/png")


async def encoding(request: Request) -> Response:
    return Response(request.headers.get("accept-encoding", "").encode(), media_type="image/png")


async def text(request: Request) -> Response:
    return Response(b"hello", media_type="text/plain")


async def big(request: Request) -> Response:
    return Response(b"\x00" * 20_000, media_type="image/png")


async def big_streamed(request: Request) -> Response:
    # No Content-Length: the limit must hold while reading.
    async def body() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"\x00" * 1000

    return StreamingResponse(body(), media_type="image/png")


async def slow(request: Request) -> Response:
    await asyncio.sleep(1.5)
    return Response(PNG, media_type="image/png")


async def gzip_bomb(request: Request) -> Response:
    # 10 MB of zeros in about 10 KB; also sent to a client that asked for no compression.
    return Response(
        gzip.compress(b"\x00" * 10_000_000), media_type="image/png", headers={"content-encoding": "gzip"}
    )


async def missing(request: Request) -> Response:
    return Response(b"", status_code=404)


async def loop(request: Request) -> Response:
    return RedirectResponse("/loop", status_code=302)


def redirect_to(target: str) -> Route:
    async def handler(request: Request) -> Response:
        return RedirectResponse(target, status_code=302)

    return Route(f"/to-{target.strip('/')}", handler)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/img.png", image),
            Route("/host", host),
            Route("/text", text),
            Route("/encoding", encoding),
            Route("/big", big),
            Route("/big-streamed", big_streamed),
            Route("/slow", slow),
            Route("/gzip-bomb", gzip_bomb),
            Route("/missing", missing),
            redirect_to("/img.png"),
            Route("/loop", loop),
        ]
    )
    with BackgroundServer(app) as running:
        yield running.url


async def test_fetches_an_image(server: str) -> None:
    fetched = await fetch(f"{server}/img.png", OPEN)
    assert (fetched.content, fetched.content_type) == (PNG, "image/png")


async def test_connects_to_the_resolved_address_with_the_original_host_header(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    fetched = await fetch(f"http://localhost:{port}/host", OPEN)
    assert fetched.content == f"localhost:{port}".encode()


async def test_asks_for_uncompressed_content(server: str) -> None:
    fetched = await fetch(f"{server}/encoding", OPEN)
    assert fetched.content == b"identity"


async def test_an_unreachable_first_address_falls_back_to_the_next(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = int(server.rsplit(":", 1)[1])
    tried: list[str] = []

    async def dual_stack(host: str, resolved_port: int) -> list[str]:
        tried.append(host)
        # ::1 with nothing listening there for this port (or no IPv6 at all), then the real server.
        return ["::1", "127.0.0.1"]

    monkeypatch.setattr(fetch_module, "resolve", dual_stack)
    fetched = await fetch(f"http://images.test:{port}/img.png", OPEN)
    assert fetched.content.startswith(b"\x89PNG")
    assert tried == ["images.test"]


async def test_follows_redirects(server: str) -> None:
    fetched = await fetch(f"{server}/to-img.png", OPEN)
    assert fetched.content == PNG
    assert fetched.url.endswith("/img.png")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/text", "not an image"),
        ("/big", "larger than"),
        ("/big-streamed", "larger than"),
        ("/gzip-bomb", "gzip-compressed"),
        ("/missing", "HTTP 404"),
        ("/loop", "redirected more than"),
    ],
)
async def test_refused_answers(server: str, path: str, reason: str) -> None:
    with pytest.raises(FetchError, match=reason):
        await fetch(f"{server}{path}", OPEN)


async def test_time_is_bounded(server: str) -> None:
    with pytest.raises(FetchError, match="longer than"):
        await fetch(f"{server}/slow", FetchPolicy(max_bytes=10_000, timeout=0.3, allow_private=True))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x.png",
        "http://localhost:9/x.png",
        "http://[::1]:9/x.png",
        "http://10.0.0.1/x.png",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/x.png",
        "http://0.0.0.0/x.png",
    ],
)
async def test_private_and_loopback_addresses_are_refused_by_default(url: str) -> None:
    with pytest.raises(FetchError, match="private or reserved"):
        await fetch(url, GUARDED)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x.png", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http://user:pass@example.com/x.png", "credentials"),
        ("http:///x.png", "no host"),
        ("http://example.com:99999/x.png", "invalid port"),
        ("http://no-such-host.invalid/x.png", "could not be resolved"),
        ("http://[::1/a.png", "malformed"),
    ],
)
async def test_malformed_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(FetchError, match=reason):
        await fetch(url, GUARDED)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/a\x00b.png",
        "http://127.0.0.1:9/a\x7fb.png",
        "http://127.0.0.1:9/a\tb.png",
        "http://127.0.0.1:9/a\nb.png",
        "http://127.0.0.1:9/a b.png",
        "http://127.0.0.1:9/" + "a" * 65_536,
    ],
)
async def test_urls_that_cannot_be_sent_are_refused_before_any_connection(url: str) -> None:
    """Hosts that pass the address check (here: allowed private) must not let a URL error escape."""
    with pytest.raises(FetchError, match=r"malformed|longer than"):
        await fetch(url, OPEN)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        # IPv6 addresses that reach an IPv4 one: judged by it.
        ("64:ff9b::a00:1", False),  # NAT64 → 10.0.0.1
        ("64:ff9b::7f00:1", False),  # NAT64 → 127.0.0.1
        ("64:ff9b::808:808", True),  # NAT64 → 8.8.8.8
        ("64:ff9b:1::808:808", False),  # local-use NAT64
        ("2002:a9fe:a9fe::", False),  # 6to4 → 169.254.169.254
        ("2002:808:808::", True),  # 6to4 → 8.8.8.8
        ("::7f00:1", False),  # IPv4-compatible → 127.0.0.1
        ("::ffff:0:a00:1", False),  # SIIT → 10.0.0.1
        ("fec0::1", False),  # site-local
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public
