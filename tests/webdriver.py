"""A minimal W3C WebDriver client (over httpx) for Debian's `chromium` + `chromium-driver`.

No Selenium or Playwright: the protocol is a handful of JSON calls, and Playwright's own browser
download cannot work offline. A missing browser skips the test locally and fails it under CI.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.servers import free_port, stop_process

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
_BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _require(names: tuple[str, ...], package: str) -> str:
    for name in names:
        if path := shutil.which(name):
            return path
    reason = f"no {names[0]} installed: the dashboard's browser test cannot run (apt-get install {package})"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


class Browser:
    def __init__(self, http: httpx.Client, session: str) -> None:
        self._http = http
        self._session = f"/session/{session}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self._http.request(method, f"{self._session}{path}", json=body)
        value = answer.json().get("value")
        if answer.status_code != 200:
            raise AssertionError(f"WebDriver {method} {path}: {value}")
        return value

    def open(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css: str) -> str:
        element: str = self._call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]
        return element

    def click(self, css: str) -> None:
        self._call("POST", f"/element/{self.find(css)}/click", {})

    def type(self, css: str, text: str) -> None:
        self._call("POST", f"/element/{self.find(css)}/value", {"text": text})

    def size(self, width: int, height: int) -> None:
        self._call("POST", "/window/rect", {"width": width, "height": height})

    def wait_for(self, script: str, *args: Any, timeout: float = 20) -> Any:
        """Poll `script` (a function body returning a value) until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while not (value := self.run(script, *args)):
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never satisfied: {script}")
            time.sleep(0.1)
        return value

    def screenshot(self) -> bytes:
        return base64.b64decode(self._call("GET", "/screenshot"))


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    browser = _require(_BROWSERS, "chromium")
    driver = _require(("chromedriver",), "chromium-driver")
    port = free_port()
    process = subprocess.Popen(
        [driver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if http.get("/status").json()["value"]["ready"]:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "chromedriver did not start"
                time.sleep(0.1)
            options = {
                "binary": browser,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            }
            capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
            created = http.post("/session", json={"capabilities": capabilities}).json()["value"]
            session = created["sessionId"]
            try:
                yield Browser(http, session)
            finally:
                http.delete(f"/session/{session}")
    finally:
        stop_process(process)
