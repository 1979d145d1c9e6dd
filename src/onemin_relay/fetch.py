"""Fetching a URL a client gave us (an image in a chat message) without becoming an SSRF proxy.

- only http(s), no credentials in the URL;
- the host is resolved once, every address checked (loopback, private, link-local, reserved, multicast
  and other non-global ranges are refused unless `allow_private`), and connections go only to those
  checked addresses, tried in turn, so a second DNS answer cannot point them elsewhere (DNS rebinding):
  aiohttp's only resolver is `_Pinned`, which answers with the addresses checked for the current hop; the
  `Host` header and the TLS server name and certificate check stay the URL's own;
- redirects are followed by hand, each hop checked the same way, at most `MAX_REDIRECTS`;
- the body is bounded in bytes and the whole fetch in time, and the content type must be acceptable;
- the body must come uncompressed (`Accept-Encoding: identity`): a few KB of gzip can inflate to many MB
  in one piece, before any size check could stop it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp
import anyio
from aiohttp.abc import AbstractResolver, ResolveResult

from onemin_relay import USER_AGENT
from onemin_relay.upstream.http import ssl_context

MAX_REDIRECTS = 5
MAX_URL_CHARS = 16_384  # signed URLs run to a few kB
_CONNECT_ATTEMPT_SECONDS = 5.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class FetchError(Exception):
    """The URL was refused or could not be fetched; the message is safe to show to the client."""


@dataclass(frozen=True)
class Fetched:
    content: bytes
    content_type: str  # the media type, lower-case, without parameters
    url: str  # the final URL, after redirects


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int
    timeout: float
    allow_private: bool = False
    # Media types accepted, by prefix. Storage services (1min.ai's own asset bucket among them) often
    # serve images as generic binary, so that passes too; callers check the bytes themselves.
    content_types: tuple[str, ...] = ("image/", "application/octet-stream", "binary/octet-stream")


async def fetch(url: str, policy: FetchPolicy) -> Fetched:
    """GET `url` under `policy`; raise FetchError (never anything else for a bad URL or answer)."""
    try:
        with anyio.fail_after(policy.timeout):
            return await _fetch(url, policy)
    except TimeoutError:
        raise FetchError(f"fetching the URL took longer than {policy.timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise FetchError(f"the URL could not be fetched ({type(exc).__name__})") from None
    except ValueError:  # whatever urlsplit let through that aiohttp will not send
        raise FetchError("the URL is malformed") from None


_HEADERS = {"User-Agent": USER_AGENT, "Accept": "image/*", "Accept-Encoding": "identity"}


async def _fetch(url: str, policy: FetchPolicy) -> Fetched:
    resolver = _Pinned()
    # A connect attempt gets a share of the time, so an unreachable first address (an IPv6 address on an
    # IPv4-only host, say) leaves time for the next one.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(_CONNECT_ATTEMPT_SECONDS, policy.timeout))
    connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False, ssl=ssl_context())
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,  # a compressed answer is refused, never inflated
    ) as session:
        for _ in range(MAX_REDIRECTS + 1):
            resolver.addresses = await _checked_destination(url, policy)
            async with session.get(url, headers=_HEADERS, allow_redirects=False) as response:
                location = response.headers.get("Location")
                if response.status in _REDIRECTS and location is not None:
                    url = urljoin(url, location)
                    continue
                return await _read(response, url, policy)
    raise FetchError(f"the URL redirected more than {MAX_REDIRECTS} times")


class _Pinned(AbstractResolver):
    """The only resolver the fetch's connections use: the addresses checked for the current hop."""

    def __init__(self) -> None:
        self.addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.addresses
        ]

    async def close(self) -> None:
        pass


async def _checked_destination(
    url: str, policy: FetchPolicy
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses `url` may be fetched from, every one checked; FetchError if it may not be fetched."""
    if len(url) > MAX_URL_CHARS:
        raise FetchError(f"the URL is longer than {MAX_URL_CHARS} characters")
    if any(char <= " " or char == "\x7f" for char in url):  # control characters or spaces: never sendable
        raise FetchError("the URL is malformed (it holds spaces or control characters)")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise FetchError("the URL is malformed") from None
    if parts.scheme not in {"http", "https"}:
        raise FetchError("only http and https URLs can be fetched")
    if parts.username or parts.password:
        raise FetchError("URLs with credentials are not fetched")
    host = parts.hostname
    if not host:
        raise FetchError("the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FetchError("the URL has an invalid port") from None
    return await _checked_addresses(host, port, policy.allow_private)


async def resolve(host: str, port: int) -> list[str]:
    """The host's addresses, in the resolver's order of preference."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def _checked_addresses(
    host: str, port: int, allow_private: bool
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address the host resolves to, all checked: one refused address refuses the host."""
    try:
        literal = ipaddress.ip_address(host)
        addresses = [literal]
    except ValueError:
        try:
            resolved = await resolve(host, port)
        except (socket.gaierror, UnicodeError):
            raise FetchError(f"the host {host!r} could not be resolved") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(address) for address in resolved))
    if not addresses:
        raise FetchError(f"the host {host!r} could not be resolved")
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise FetchError(f"the host {host!r} is on a private or reserved network; it is not fetched")
    return addresses


# IPv6 ranges that carry an IPv4 address in their last 32 bits, which is what they reach: NAT64 (RFC 6052),
# IPv4-compatible (deprecated) and SIIT (RFC 7915) addresses.
_IPV4_IN_LAST_32_BITS = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("::/96"),
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
)
# NAT64 for local use (RFC 8215): translates into a private network whatever the IPv4 part says.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for globally routable unicast addresses. An IPv6 address that stands for an IPv4 one
    (IPv4-mapped, 6to4, NAT64, IPv4-compatible, SIIT) is judged by that IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local or address in _LOCAL_NAT64:
            return False
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and any(address in network for network in _IPV4_IN_LAST_32_BITS):
            embedded = ipaddress.IPv4Address(address.packed[-4:])
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not address.is_multicast


async def _read(response: aiohttp.ClientResponse, url: str, policy: FetchPolicy) -> Fetched:
    if response.status != 200:
        raise FetchError(f"the URL answered HTTP {response.status}")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type.startswith(policy.content_types):
        raise FetchError(f"the URL serves {content_type or 'no content type'}, not an image")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in {"", "identity"}:
        raise FetchError(f"the URL answered with {encoding}-compressed content; not fetched")
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > policy.max_bytes:
        raise FetchError(f"the resource is larger than {policy.max_bytes} bytes")
    body = bytearray()
    while chunk := await response.content.readany():
        body += chunk
        if len(body) > policy.max_bytes:
            raise FetchError(f"the resource is larger than {policy.max_bytes} bytes")
    return Fetched(bytes(body), content_type, url)
