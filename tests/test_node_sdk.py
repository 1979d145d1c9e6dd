"""The official OpenAI Node SDK (`tests/node`, installed by `make node-deps` / `.ci/run`) calls tools and
asks for structured output through the relay, over real sockets, the simulator playing the model.

Without node (or its installed SDK) the test is skipped with the reason, except under CI, where it fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import KEY_A, SimulatorHandle

NODE_DIR = Path(__file__).parent / "node"


def node_binary() -> str:
    node = shutil.which("node")
    reason = ""
    if node is None:
        reason = "`node` is not installed (apt-get install nodejs npm, then make node-deps)"
    elif not (NODE_DIR / "node_modules" / "openai").is_dir():
        reason = "the Node SDK is not installed: run `make node-deps`"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    assert node is not None
    return node


def test_the_node_sdk_calls_tools_and_parses_structured_output(relay_url: str, sim: SimulatorHandle) -> None:
    node = node_binary()
    tool_call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    sim.queue_answers(tool_call, "Let me check.\n" + tool_call, 'Sure: {"city": "Paris", "celsius": 18}')
    finished = subprocess.run(
        [node, str(NODE_DIR / "tools.mjs"), f"{relay_url}/v1", KEY_A],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)
    paris = [["get_weather", {"city": "Paris"}]]
    assert result["whole"] == {"finish": "tool_calls", "content": None, "calls": paris}
    assert result["streamed"] == {"finish": "tool_calls", "content": "Let me check.", "calls": paris}
    assert result["structured"] == {"city": "Paris", "celsius": 18}
