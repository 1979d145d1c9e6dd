"""Open WebUI's recorded requests (tests/fixtures/open_webui/), for the tests that replay them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from onemin_relay.core.types import ToolSpec

FIXTURES = Path(__file__).parent / "fixtures" / "open_webui"


def builtin_tools(*, image_generation: bool = False) -> list[dict[str, Any]]:
    """The `tools` Open WebUI 0.12 sends with every chat message (28; 29 with the image toggle on)."""
    recorded = json.loads((FIXTURES / "builtin_tools.json").read_text(encoding="utf-8"))
    tools: list[dict[str, Any]] = recorded["tools"]
    return [*tools, recorded["image_generation_tool"]] if image_generation else tools


def tool_specs() -> list[ToolSpec]:
    return [
        ToolSpec(tool["function"]["name"], tool["function"]["description"], tool["function"]["parameters"])
        for tool in builtin_tools()
    ]


def recorded_requests() -> dict[str, dict[str, Any]]:
    """Each recorded request by name; a body's `"tools": "@builtin_tools"` stands for the captured list."""
    recorded = json.loads((FIXTURES / "requests.json").read_text(encoding="utf-8"))
    requests: dict[str, dict[str, Any]] = {}
    for request in recorded["requests"]:
        request = copy.deepcopy(request)
        body = request.get("json")
        if isinstance(body, dict) and body.get("tools") == "@builtin_tools":
            body["tools"] = builtin_tools()
        requests[request["name"]] = request
    return requests
