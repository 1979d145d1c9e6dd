"""Finding the tool calls a model wrote in its answer: a lenient, incremental scanner (pure).

Whatever format the prompt asked for (docs/tools.md), the model may write a call as
`<tool_call>{…}</tool_call>`, as a ```` ```json ```` fenced block, or as a bare JSON value; the value is
`{"name", "arguments"}`, OpenAI's `{"function": {"name", "arguments"}}`, `{"tool_calls": [...]}` or a list
of calls, with arguments as an object or as a JSON string. Everything else is prose.

The scanner reads the answer left to right, as a stream or in one piece (the same code either way, so a
streamed answer gives exactly what the whole answer gives). It hands prose out as soon as it is sure it
is prose: only text that could still begin a call (`<`, a backtick fence, `{`, `[`) is held back until
it is settled. Each position is looked at a bounded number of times, so hostile answers scan in linear
time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
FENCE = "```"
# Fences whose content may be a call; any other language tag (```python) is code and passes as prose.
_CALL_FENCES = {"", "json", "json5", "jsonc", "tool_call", "tool_calls", "xml", "javascript", "js"}
_START = re.compile(r"[<`{\[]")
_CLOSE_TAG = re.compile(re.escape(CALL_CLOSE), re.IGNORECASE)
_SPACE = re.compile(r"\s*")
_SEPARATORS = re.compile(r"[\s,]*")
_ARGUMENT_KEYS = ("arguments", "parameters", "args", "input")
# A bare JSON value that does not parse but clearly tried to be a call (it is reported, not shown as prose).
_ATTEMPT = re.compile(r'\s*[\[{]\s*\{?\s*"(?:name|function|tool_calls|tool_call)"\s*:')


@dataclass(frozen=True)
class FoundCall:
    """A call the model wrote. `problem` says why it cannot be used as is (then name/arguments may be
    missing); whether the tool exists and the arguments fit its schema is checked by the caller."""

    source: str  # the text the model wrote for it
    name: str | None = None
    arguments: Mapping[str, Any] | None = None
    problem: str | None = None


class CallScanner:
    """Feed the answer in pieces; `feed`/`finish` return the prose now settled, `calls` lists the calls."""

    def __init__(self) -> None:
        self.calls: list[FoundCall] = []
        self._buffer = ""  # unsettled text; when not empty in prose mode it starts at a possible call
        self._code = False  # inside a code fence that is not a call: prose until the closing fence
        self._json_scan = _JsonScan()
        self._looked = 0  # how far into the buffer a search for the candidate's end has already looked
        self._finished = False

    def feed(self, text: str) -> str:
        self._buffer += text
        return self._settle()

    def finish(self) -> str:
        self._finished = True
        return self._settle()

    def _settle(self) -> str:
        out: list[str] = []
        while self._buffer:
            if self._code:
                if not self._settle_code(out):
                    break
                continue
            start = self._next_candidate()
            if start < 0:
                out.append(self._buffer)
                self._buffer = ""
                break
            if start:
                out.append(self._buffer[:start])
                self._buffer = self._buffer[start:]
                self._restart()
            consumed = self._candidate(out)
            if consumed is None:  # need more text
                break
            self._buffer = self._buffer[consumed:]
            self._restart()
        return "".join(out)

    def _next_candidate(self) -> int:
        """Where the next possible call starts (-1: nowhere). Openings that a glance rules out (`<b>`,
        a single backtick, `{` not followed by a key) are skipped here, without copying the buffer."""
        text, position = self._buffer, 0
        while (match := _START.search(text, position)) is not None:
            index = match.start()
            char = text[index]
            if char == "<":
                head = text[index : index + len(CALL_OPEN)].lower()
                plausible = CALL_OPEN.startswith(head)
            elif char == "`":
                plausible = FENCE.startswith(text[index : index + len(FENCE)])
            else:
                after = _SPACE.match(text, index + 1).end()  # type: ignore[union-attr]  # `\s*` matches
                plausible = after == len(text) or text[after] == ('"' if char == "{" else "{")
            if plausible:
                return index
            position = index + 1
        return -1

    def _restart(self) -> None:
        self._json_scan = _JsonScan()
        self._looked = 0

    def _find(self, pattern: str | re.Pattern[str], start: int) -> int:
        """Where `pattern` next occurs in the buffer from `start`, not searching again text already
        searched for this candidate (so a candidate arriving in many pieces costs linear time)."""
        start = max(start, self._looked - len(CALL_CLOSE))
        self._looked = len(self._buffer)
        if isinstance(pattern, str):
            return self._buffer.find(pattern, start)
        match = pattern.search(self._buffer, start)
        return match.start() if match else -1

    def _settle_code(self, out: list[str]) -> bool:
        end = self._buffer.find(FENCE)
        if end < 0:
            keep = 0 if self._finished else len(FENCE) - 1  # the closing fence may be arriving
            cut = max(0, len(self._buffer) - keep)
            out.append(self._buffer[:cut])
            self._buffer = self._buffer[cut:]
            return False
        out.append(self._buffer[: end + len(FENCE)])
        self._buffer = self._buffer[end + len(FENCE) :]
        self._code = False
        return True

    def _candidate(self, out: list[str]) -> int | None:
        """The buffer starts with a possible call: how much of it is settled (as prose or as calls), or
        None when more text is needed to tell."""
        first = self._buffer[0]
        if first == "<":
            return self._tag(out)
        if first == "`":
            return self._fence(out)
        return self._bare_json(out)

    def _prose(self, out: list[str], size: int) -> int:
        out.append(self._buffer[:size])
        return size

    def _tag(self, out: list[str]) -> int | None:
        head = self._buffer[: len(CALL_OPEN)].lower()
        if not CALL_OPEN.startswith(head):
            return self._prose(out, 1)
        if len(head) < len(CALL_OPEN):
            return self._prose(out, len(self._buffer)) if self._finished else None
        close = self._find(_CLOSE_TAG, len(CALL_OPEN))
        if close < 0 and not self._finished:
            return None
        end = len(self._buffer) if close < 0 else close + len(CALL_CLOSE)
        body = self._buffer[len(CALL_OPEN) : close if close >= 0 else end]
        self.calls += _calls_in_tag(self._buffer[:end], body)
        return end

    def _fence(self, out: list[str]) -> int | None:
        if not self._buffer.startswith(FENCE[: len(self._buffer)]):
            return self._prose(out, 1)
        if not self._buffer.startswith(FENCE):
            return self._prose(out, 1) if self._finished or len(self._buffer) >= len(FENCE) else None
        line_end = self._buffer.find("\n", 0, 200)  # an info string is short
        if line_end < 0:
            if self._finished or len(self._buffer) >= 200:
                return self._prose(out, len(FENCE))
            return None
        language = self._buffer[len(FENCE) : line_end].strip().lower()
        if language not in _CALL_FENCES:
            self._code = True  # code, not a call: stream it as prose up to its closing fence
            return self._prose(out, line_end + 1)
        close = self._find(FENCE, line_end)
        if close < 0:
            return self._prose(out, len(self._buffer)) if self._finished else None
        end = close + len(FENCE)
        inner = CallScanner()
        rest = inner.feed(self._buffer[line_end + 1 : close]) + inner.finish()
        if inner.calls and not rest.strip():
            self.calls += [FoundCall(self._buffer[:end], c.name, c.arguments, c.problem) for c in inner.calls]
            return end
        return self._prose(out, end)

    def _bare_json(self, out: list[str]) -> int | None:
        opener = self._buffer[0]
        after = _SPACE.match(self._buffer, 1).end()  # type: ignore[union-attr]  # `\s*` always matches
        if after == len(self._buffer):
            return self._prose(out, len(self._buffer)) if self._finished else None
        if self._buffer[after] != ('"' if opener == "{" else "{"):
            return self._prose(out, 1)
        end = self._json_scan.end(self._buffer)
        if end is None:
            if not self._finished:
                return None
            if _ATTEMPT.match(self._buffer):
                self.calls.append(FoundCall(self._buffer, problem="the call's JSON is cut off"))
                return len(self._buffer)
            # never closed: nothing after it is scanned again (that would make hostile text quadratic)
            return self._prose(out, len(self._buffer))
        source = self._buffer[:end]
        try:
            value = json.loads(source)
        except (ValueError, RecursionError) as exc:
            if _ATTEMPT.match(source):
                self.calls.append(FoundCall(source, problem=f"the call is not valid JSON ({exc})"))
                return end
            return self._prose(out, end)
        calls = calls_in_value(source, value, bare=True)
        if not calls:
            return self._prose(out, end)
        self.calls += calls
        return end


class _JsonScan:
    """Where the JSON value at the start of a text ends: brackets counted outside strings, resumed where
    the last look stopped, so a value arriving in many pieces is read once."""

    def __init__(self) -> None:
        self._position = 0
        self._depth = 0
        self._in_string = False
        self._escaped = False

    def end(self, text: str) -> int | None:
        index = self._position
        while index < len(text):
            char = text[index]
            index += 1
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
            elif char in "}]":
                self._depth -= 1
                if self._depth == 0:
                    self._position = index
                    return index
        self._position = index
        return None


def _calls_in_tag(source: str, body: str) -> list[FoundCall]:
    text = body.strip()
    if text.startswith(FENCE):  # a fenced block inside the tags
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit(FENCE, 1)[0].strip()
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        # several calls in one pair of tags, one after the other: a list of them
        value = _json_sequence(text)
        if value is None:
            return [FoundCall(source, problem=f"the call is not valid JSON ({exc})")]
    return calls_in_value(source, value, bare=False) or [
        FoundCall(source, problem='the call must be a JSON object {"name": …, "arguments": {…}}')
    ]


def _json_sequence(text: str) -> list[Any] | None:
    """JSON values written one after the other (separated by whitespace or commas), or None."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    position = 0
    while True:
        position = _SEPARATORS.match(text, position).end()  # type: ignore[union-attr]  # always matches
        if position == len(text):
            return values if len(values) > 1 else None
        try:
            value, position = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):
            return None
        values.append(value)


def calls_in_value(source: str, value: Any, *, bare: bool) -> list[FoundCall]:
    """The calls a parsed JSON value holds, in any accepted shape; [] when it is not a call at all.

    A `bare` value (not inside `<tool_call>` tags) must name its arguments to count as a call, so a JSON
    object that merely has a `name` stays prose."""
    if isinstance(value, list):
        calls = [_one_call(source, item, bare=bare) for item in value]
        return [call for call in calls if call is not None] if value and all(calls) else []
    if isinstance(value, dict) and isinstance(value.get("tool_calls"), list):
        return calls_in_value(source, value["tool_calls"], bare=False)
    call = _one_call(source, value, bare=bare)
    return [call] if call is not None else []


def _one_call(source: str, item: Any, *, bare: bool) -> FoundCall | None:
    if not isinstance(item, dict):
        return None
    function = item.get("function")
    if isinstance(function, dict):  # OpenAI's own shape: {"type": "function", "function": {...}}
        item = {**item, **function}
    elif isinstance(function, str) and "name" not in item:
        item = {**item, "name": function}
    name = item.get("name")
    keys = [key for key in _ARGUMENT_KEYS if key in item]
    if not isinstance(name, str) or (bare and not keys):
        return None
    return _with_arguments(source, name, item[keys[0]] if keys else {})


def _with_arguments(source: str, name: str, arguments: Any) -> FoundCall:
    if arguments is None:
        arguments = {}
    if isinstance(arguments, str):
        if not arguments.strip():
            arguments = {}
        else:
            try:
                arguments = json.loads(arguments)
            except (ValueError, RecursionError) as exc:
                return FoundCall(source, name, problem=f"its arguments are not valid JSON ({exc})")
    if not isinstance(arguments, dict):
        return FoundCall(source, name, problem="its arguments must be a JSON object")
    return FoundCall(source, name, arguments)


class ProseTrimmer:
    """Hands prose on with the whitespace at both ends of the whole answer removed: leading whitespace is
    dropped, trailing whitespace held until more prose follows it (so a stream equals the whole answer)."""

    def __init__(self) -> None:
        self._started = False
        self._held = ""

    def feed(self, text: str) -> str:
        if not self._started:
            text = text.lstrip()
            if not text:
                return ""
            self._started = True
        text = self._held + text
        kept = text.rstrip()
        self._held = text[len(kept) :]
        return kept
