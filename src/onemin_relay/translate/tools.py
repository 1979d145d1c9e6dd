"""What the model is told about tools, and how calls are written in the transcript (pure).

1min.ai's chat takes a prompt and nothing else, so tools are offered in words: a short instruction and
one compact line per tool (docs/tools.md). Earlier calls in the transcript are folded in the very format
the model is told to write, so it sees its own past calls as examples of the format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from onemin_relay.core.types import ToolChoice, ToolSpec
from onemin_relay.translate.tool_scan import CALL_CLOSE, CALL_OPEN

# Each level shortens the tool lines further; the first level whose section fits the size bound is used.
_DESCRIPTION_CHARS = (300, 100, 0, 0)
_PARAMETER_NOTE_CHARS = (80, 0, 0, 0)
_ENUM_VALUES_SHOWN = 12


def render_call(name: str, arguments: str) -> str:
    """A call as the model writes it: `<tool_call>{"name": …, "arguments": {…}}</tool_call>`.

    `arguments` is the JSON text a client sent back; text that is not JSON is kept as a string."""
    try:
        value: Any = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        value = arguments
    body = json.dumps({"name": name, "arguments": value}, ensure_ascii=False)
    return f"{CALL_OPEN}{body}{CALL_CLOSE}"


def offered_tools(tools: Sequence[ToolSpec], choice: ToolChoice) -> list[ToolSpec]:
    """The tools the model is told about: none for `none`, else those `names` allows (all if empty)."""
    if choice.mode == "none":
        return []
    if not choice.names:
        return list(tools)
    return [tool for tool in tools if tool.name in choice.names]


def tools_section(tools: Sequence[ToolSpec], choice: ToolChoice, *, parallel: bool, max_chars: int) -> str:
    """The instruction block for `tools` (already filtered by `offered_tools`); "" when none is offered."""
    if not tools:
        return ""
    lines = [
        "You can call tools. To call one, write exactly this line and nothing after it:",
        f'{CALL_OPEN}{{"name": "<tool name>", "arguments": {{<arguments as JSON>}}}}{CALL_CLOSE}',
        "To call several at once, write one such line per call."
        if parallel
        else "Call at most one tool per answer.",
        "Each result comes back later as a 'Tool result' turn. When no tool is needed, answer in plain text.",
    ]
    if choice.mode == "required" and len(tools) == 1:
        lines.append(f"You must call the tool {tools[0].name} now.")
    elif choice.mode == "required":
        lines.append("You must call at least one tool now.")
    head = "\n".join(lines) + "\nTools:\n"
    for level in range(len(_DESCRIPTION_CHARS)):
        body = "\n".join(tool_line(tool, level) for tool in tools)
        if len(head) + len(body) <= max_chars:
            break
    return head + body


def tool_line(tool: ToolSpec, level: int = 0) -> str:
    """`- name(param: type, optional?: type): description`, shorter at each higher level."""
    params = _parameters(tool.parameters, level)
    description = _shorten(tool.description, _DESCRIPTION_CHARS[level], first_sentence=level > 0)
    return f"- {tool.name}({params})" + (f": {description}" if description else "")


def _parameters(schema: Mapping[str, Any] | None, level: int) -> str:
    if not schema:
        return ""
    properties = schema.get("properties")
    simple_object = isinstance(properties, Mapping) and not any(
        key in schema for key in ("$defs", "definitions", "anyOf", "oneOf", "allOf", "$ref")
    )
    if not simple_object:
        return "arguments: " + _compact(schema)  # nothing simpler says it right: the schema itself
    assert isinstance(properties, Mapping)
    required = _required(schema)
    parts = []
    for name, sub in properties.items():
        optional = "" if name in required else "?"
        if level >= len(_DESCRIPTION_CHARS) - 1:
            parts.append(f"{name}{optional}")
            continue
        part = _field(name, sub, name in required)
        note = sub.get("description") if isinstance(sub, Mapping) else None
        if isinstance(note, str) and _PARAMETER_NOTE_CHARS[level]:
            note = _shorten(note, _PARAMETER_NOTE_CHARS[level], first_sentence=False)
            part += f" ({note})" if note else ""
        parts.append(part)
    return ", ".join(parts)


def _required(schema: Mapping[str, Any]) -> set[str]:
    names = schema.get("required")
    return {name for name in names if isinstance(name, str)} if isinstance(names, list) else set()


def _field(name: str, schema: Any, required: bool) -> str:
    """`name: type`, or `name?: type` for an optional one (its `null` alternative left unsaid)."""
    if required:
        return f"{name}: {_type_of(schema)}"
    return f"{name}?: {_type_of(_without_null(schema))}"


def _type_of(schema: Any) -> str:
    """A terse type: `string`, `integer[]`, `"c" | "f"`; the sub-schema itself when it is more than that."""
    if not isinstance(schema, Mapping) or set(schema) <= {"description", "title", "default"}:
        return "any"
    enum = schema.get("enum")
    if isinstance(enum, list) and 0 < len(enum) <= _ENUM_VALUES_SHOWN:
        return " | ".join(json.dumps(value, ensure_ascii=False) for value in enum)
    if "const" in schema:
        return json.dumps(schema["const"], ensure_ascii=False)
    options = schema.get("anyOf", schema.get("oneOf"))
    if (
        isinstance(options, list)
        and options
        and set(schema) <= {"anyOf", "oneOf", "description", "title", "default"}
    ):
        alternatives = [_type_of(option) for option in options]
        if all(" " not in kind and not kind.startswith("{") for kind in alternatives):
            return " | ".join(alternatives)  # `integer | null`, the shape pydantic gives Optional[int]
    kind = schema.get("type")
    plain = {key for key in schema if key not in ("type", "description", "title", "default", "items")}
    if isinstance(kind, str) and kind not in ("object", "array") and not plain:
        return kind
    if isinstance(kind, list) and all(isinstance(k, str) and k not in ("object", "array") for k in kind):
        return " | ".join(kind) if not plain else _compact(_without_notes(schema))
    if kind == "array" and not plain:
        items = schema.get("items")
        inner = _type_of(items) if items is not None else "any"
        one_word = " " not in inner or (inner.startswith("{") and not inner.startswith('{"'))
        return f"{inner}[]" if one_word else f"array of {inner}"
    if kind == "object" and schema.get("additionalProperties") is True:
        plain -= {"additionalProperties"}
    if kind == "object" and not plain and "items" not in schema:
        return "object"
    properties = schema.get("properties")
    if kind == "object" and isinstance(properties, Mapping) and plain <= {"properties", "required"}:
        required = _required(schema)
        fields = (_field(name, sub, name in required) for name, sub in properties.items())
        return "{" + ", ".join(fields) + "}"  # `{content: string, status?: "a" | "b"}`
    return _compact(_without_notes(schema))


def _without_null(schema: Any) -> Any:
    """An optional parameter's schema without its `null` alternative: leaving it out already says none."""
    if not isinstance(schema, Mapping):
        return schema
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and {"type": "null"} in options and len(options) > 1:
            rest = [option for option in options if option != {"type": "null"}]
            if len(rest) == 1 and isinstance(rest[0], Mapping):
                return {k: v for k, v in schema.items() if k != key} | dict(rest[0])
            return {**schema, key: rest}
    return schema


def _without_notes(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in schema.items() if key not in ("description", "title")}


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _shorten(text: str, limit: int, *, first_sentence: bool) -> str:
    text = " ".join(text[: 4 * limit].split())  # only what can be shown is read (descriptions may be huge)
    if first_sentence:
        end = text.find(". ")
        text = text[: end + 1] if end >= 0 else text
    if not limit:
        return ""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
