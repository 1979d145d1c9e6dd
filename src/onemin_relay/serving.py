"""Running ASGI apps with uvicorn: in the foreground (CLI) or on a background thread (demo, tests, bench)."""

from __future__ import annotations

import asyncio
import resource
import socket
import threading
from types import TracebackType
from typing import Any

import uvicorn
from starlette.types import ASGIApp


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one (read it back with `getsockname`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
    # and without it every keep-alive response waits ~40 ms on Nagle + delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def raise_open_file_limit(wanted: int) -> int:
    """Raise this process's soft limit on open files towards `wanted`, within the hard limit (workers
    inherit it) → the soft limit now in force. Each call in flight holds two sockets (its client's and
    1min.ai's), and the common default of 1,024 would refuse connections long before
    UPSTREAM_MAX_IN_FLIGHT."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:  # (-1 in Python): no limit to raise, and enough
        return wanted
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def uvicorn_config(app: ASGIApp | str, *, log_level: str = "warning", **options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=log_level.lower(),
        log_config=None,  # keep the process's own logging set-up (JSON lines)
        access_log=False,  # the relay writes its own access line, with request ids
        lifespan="on",
        timeout_graceful_shutdown=5,
        **options,
    )


def uvicorn_server(app: ASGIApp, *, log_level: str = "warning") -> uvicorn.Server:
    return uvicorn.Server(uvicorn_config(app, log_level=log_level))


def serve_workers(app_factory: str, sock: socket.socket, workers: int, *, log_level: str) -> None:
    """`workers` processes sharing `sock`, each building its app from `app_factory` ("module:function"),
    supervised by uvicorn (a worker that dies is replaced; SIGTERM stops them all gracefully)."""
    from uvicorn.supervisors import Multiprocess  # with multiprocessing and watchfiles: only for N > 1

    config = uvicorn_config(app_factory, log_level=log_level, factory=True, workers=workers)
    Multiprocess(config, sockets=[sock]).run()


class BackgroundServer:
    """Serves an ASGI app on a real loopback socket from a thread with its own event loop.

    Use as a context manager: `with BackgroundServer(app) as server: httpx.get(server.url + "/health")`.
    `stop()` shuts the server down gracefully (lifespan shutdown runs), so a test can restart an app.
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = bind_socket(host, port)
        self.url = url_of(self._socket)
        self.port: int = self._socket.getsockname()[1]
        self._server = uvicorn_server(app)
        self._thread = threading.Thread(target=self._run, name=f"server-{self.port}", daemon=True)
        self._failure: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # reported to the starting thread
            self._failure = exc

    def start(self) -> BackgroundServer:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                self._socket.close()  # the port is free again for whoever tries next
                raise RuntimeError(f"server on {self.url} failed to start") from self._failure
            self._thread.join(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
