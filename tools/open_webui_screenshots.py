"""Run the real Open WebUI against `1min-relay demo` and screenshot its model picker and a chat answer.

Optional tooling behind `make openwebui-screenshots`, never part of `make test` or CI: Open WebUI is
installed by that target into its own virtualenv (gigabytes, outside the project's lock files) and passed
here as `--open-webui`. Everything listens on and talks to 127.0.0.1 only; Open WebUI runs offline (no
model downloads, no update check, no telemetry) with auth off and its data in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.servers import free_port, stop_process
from tests.webdriver import Browser, headless_chromium

CHAT_MODEL = "gpt-4o-mini"
CHAT_MODEL_NAME = "GPT 4o Mini - OpenAI"  # the `name` the relay's model list gives it: the picker shows that
QUESTION = "What can you tell me about the 1min.ai relay?"
_STARTUP_SECONDS = 180  # Open WebUI imports torch and migrates its database on first start


def _open_webui_environment(relay: str, data_dir: str) -> dict[str, str]:
    """Open WebUI's settings for an offline, auth-less, loopback-only run against the relay."""
    return {
        **os.environ,
        "DATA_DIR": data_dir,
        "WEBUI_AUTH": "False",
        "WEBUI_SECRET_KEY": "screenshots-only-not-a-secret",
        "OFFLINE_MODE": "true",
        "HF_HUB_OFFLINE": "1",
        "ENABLE_VERSION_UPDATE_CHECK": "false",
        "ANONYMIZED_TELEMETRY": "false",
        "DO_NOT_TRACK": "true",
        "SCARF_NO_ANALYTICS": "true",
        # No local embedding model to load: retrieval is off, so it never fetches one.
        "RAG_EMBEDDING_MODEL_AUTO_UPDATE": "False",
        "RAG_EMBEDDING_ENGINE": "openai",
        "RAG_OPENAI_API_BASE_URL": f"{relay}/v1",
        "RAG_OPENAI_API_KEY": "demo-key",
        "BYPASS_EMBEDDING_AND_RETRIEVAL": "true",
        "ENABLE_OLLAMA_API": "false",
        "OPENAI_API_BASE_URL": f"{relay}/v1",
        "OPENAI_API_KEY": "demo-key",
        "TASK_MODEL_EXTERNAL": CHAT_MODEL,
        "ENABLE_TITLE_GENERATION": "false",
        "ENABLE_FOLLOW_UP_GENERATION": "false",
        "ENABLE_TAGS_GENERATION": "false",
    }


@contextmanager
def _running(command: list[str], env: dict[str, str], log: Path, ready: str) -> Iterator[None]:
    """Start `command`, wait until `ready` (a URL) answers 200, stop it afterwards."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + _STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{command[0]} exited during startup; see {log}")
            try:
                if httpx.get(ready, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{ready} never answered; see {log}")
            time.sleep(1)
        yield
    finally:
        stop_process(process, timeout=20)


def _click_text(browser: Browser, selector: str, text: str) -> None:
    """Click the first `selector` element whose visible text contains `text` (waiting for it)."""
    find = "return [...document.querySelectorAll(arguments[0])].find(e => e.innerText.includes(arguments[1]))"
    browser.wait_for(find, selector, text)
    browser.run(find.replace("return ", "") + ".click()", selector, text)


def _screenshots(browser: Browser, webui: str, output: Path) -> None:
    browser.size(1280, 900)
    browser.open(webui)
    _click_text(browser, "button", "Okay, Let's Go")  # the release-notes dialog of a first start
    browser.run("document.querySelectorAll('[aria-label=\"Close toast\"]').forEach(b => b.click())")
    browser.click("#model-selector-model-button")
    browser.wait_for("return document.querySelector('#model-search-input')")
    time.sleep(1)  # the menu's opening transition
    (output / "open-webui-picker.png").write_bytes(browser.screenshot())
    browser.type("#model-search-input", "4o mini")
    _click_text(browser, "button", CHAT_MODEL_NAME)
    browser.type("#chat-input", QUESTION)
    browser.click("#send-message-button")
    browser.wait_for(
        "const m = document.querySelectorAll('#response-content-container');"
        "return m.length && m[m.length - 1].innerText.trim().length > 20",
        timeout=60,
    )
    time.sleep(3)  # let the stream finish and the message toolbar appear
    (output / "open-webui-chat.png").write_bytes(browser.screenshot())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--open-webui", required=True, help="the `open-webui` executable to run")
    parser.add_argument("--output", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    relay_port, simulator_port, webui_port = free_port(), free_port(), free_port()
    relay, webui = f"http://127.0.0.1:{relay_port}", f"http://127.0.0.1:{webui_port}"
    demo = [str(Path(sys.executable).with_name("1min-relay")), "demo", "--host", "127.0.0.1"]
    demo += ["--port", str(relay_port), "--simulator-port", str(simulator_port)]
    serve = [args.open_webui, "serve", "--host", "127.0.0.1", "--port", str(webui_port)]
    with tempfile.TemporaryDirectory(prefix="open-webui-") as scratch:
        logs = Path(scratch)
        relay_env = {**os.environ, "MODELS_LIST": "chat"}
        with _running(demo, relay_env, logs / "relay.log", f"{relay}/health"):
            webui_env = _open_webui_environment(relay, str(logs / "data"))
            with (
                _running(serve, webui_env, logs / "open-webui.log", f"{webui}/health"),
                headless_chromium() as browser,
            ):
                _screenshots(browser, webui, args.output)
    print(f"wrote {args.output}/open-webui-picker.png and {args.output}/open-webui-chat.png")


if __name__ == "__main__":
    main()
