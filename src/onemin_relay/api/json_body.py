"""JSON request bodies → Python objects the relay can safely use, or a 400 naming the parameter.

Refused: anything `json` cannot parse, a top level that is not an object, numbers Python will not
convert or that are not finite (5000-digit integers, NaN, 1e999), text holding a lone UTF-16 surrogate
(it cannot be encoded for upstream), and arrays longer than `MAX_ARRAY_ITEMS`. A small body is read by
orjson when orjson reads it as `json` would (`_fast_parse`: nearly always), else by `json`.

Bodies above `SLICED_PARSE_BYTES` are parsed in slices: the top levels of the document (down to
`_SLICED_DEPTH`, which reaches `messages[i].content[j]`) are walked here, each value below them is parsed
by the C decoder, and the event loop gets control back every `_SLICE_CHARS` characters. A thread would not
help: the C decoder never releases the GIL. So a 20 MB body no longer stops `/health` or other requests.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterator
from typing import Any

import orjson

from onemin_relay.errors import OpenAIError, invalid_request

SLICED_PARSE_BYTES = 1024 * 1024
MAX_ARRAY_ITEMS = 10_000  # in any array the top levels of a body hold (a 20 MB body held 600,000)
_SLICED_DEPTH = 4
_SLICE_CHARS = 64 * 1024  # well under a millisecond of parsing between two returns to the event loop
_WALK_SLICE = 20_000  # values checked for surrogates between two returns to the event loop

_UNPARSABLE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload.)"
)
# A lone surrogate can only arrive as a `\\uD800`-style escape (raw surrogate bytes are not UTF-8).
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_MAX_PARAM_CHARS = 200  # a param named in an error is client text: keep it short
_DIGITS_LIMIT = 4300  # Python's int conversion limit (sys.get_int_max_str_digits)
# orjson reads an integer beyond 64 bits (20 digits or more) as a float, `json` as an int: such bodies are
# left to `json` (and so is any body with a 19-digit run, which is simpler to find and as rare).
_LONG_NUMBER = re.compile(rb"[0-9]{19}")
# orjson nests 1024 levels deep; `json` refuses a little under the recursion limit (1000), depending on
# how deep the call already is: bodies that deep are left to `json`, which answers them as before.
_FAST_DEPTH = 900

Path = tuple[str | int, ...]


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Parse a small body in one go (see the module docstring for what is refused)."""
    data = _fast_parse(body)
    if data is None:
        data = _strict_parse(body)
    if not isinstance(data, dict):
        raise invalid_request("The request body must be a JSON object.")
    if body.count(b",") >= MAX_ARRAY_ITEMS:  # an array of more items needs at least as many commas
        _check_array_lengths(data)
    if _ESCAPED_SURROGATE.search(body):  # rare: only then is every string looked at
        for value, path in _values(data):
            _check_text(value, path)
    return data


def _fast_parse(body: bytes) -> Any:
    """orjson's reading of `body`, when it is the same as `json`'s; None when only `json` can say.

    orjson refuses what the relay refuses (NaN, Infinity, 1e999, lone surrogates) but also what `json`
    takes (UTF-16 and UTF-32 bodies, a UTF-8 BOM), reads integers beyond 64 bits as floats, and nests
    deeper than `json` can here: those bodies are read by `json`, which takes or refuses them as before.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if _LONG_NUMBER.search(body):  # rare: any 19-digit run, in a string or not, is left to `json`
        return None
    if body.count(b"[") + body.count(b"{") >= _FAST_DEPTH and _deeper_than(data, _FAST_DEPTH):
        return None
    return data


def _strict_parse(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_no_constant, parse_float=_finite_float)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # nested too deep to parse
        raise invalid_request(_UNPARSABLE) from None
    except ValueError:  # an integer longer than Python converts, NaN/Infinity, or a float like 1e999
        raise _unconvertible_number(body) from None


def _deeper_than(data: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth >= limit:
            return True
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values() if isinstance(item, dict | list))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value if isinstance(item, dict | list))
    return False


async def parse_json_object_sliced(body: bytes) -> dict[str, Any]:
    """Parse a large body in slices, letting other requests run in between."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_request(_UNPARSABLE) from None
    parser = _SlicedParser(text)
    try:
        data = await parser.document()
    except (json.JSONDecodeError, RecursionError, IndexError):
        raise invalid_request(_UNPARSABLE) from None
    except ValueError:
        raise _number_error(_param(parser.path)) from None
    if not isinstance(data, dict):
        raise invalid_request("The request body must be a JSON object.")
    if _ESCAPED_SURROGATE.search(body):
        for count, (value, path) in enumerate(_values(data)):
            _check_text(value, path)
            if count % _WALK_SLICE == _WALK_SLICE - 1:
                await asyncio.sleep(0)
    return data


class _SlicedParser:
    def __init__(self, text: str) -> None:
        self._text = text
        self._position = 0
        self._unyielded = 0
        self._decoder = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)
        self.path: Path = ()  # where the parser is, for errors

    async def document(self) -> Any:
        value = await self._value(0)
        if self._skip() != len(self._text):
            raise json.JSONDecodeError("Extra data", self._text, self._position)
        return value

    async def _value(self, depth: int) -> Any:
        start = self._skip()
        opening = self._text[start]
        if depth < _SLICED_DEPTH and opening == "[":
            return await self._array(depth)
        if depth < _SLICED_DEPTH and opening == "{":
            return await self._object(depth)
        value, self._position = self._decoder.raw_decode(self._text, start)
        self._unyielded += self._position - start
        if self._unyielded >= _SLICE_CHARS:
            self._unyielded = 0
            await asyncio.sleep(0)
        return value

    async def _array(self, depth: int) -> list[Any]:
        self._position += 1
        items: list[Any] = []
        if self._text[self._skip()] == "]":
            self._position += 1
            return items
        outer = self.path
        while True:
            if len(items) == MAX_ARRAY_ITEMS:
                raise _too_many(_param(outer))
            self.path = (*outer, len(items))
            items.append(await self._value(depth + 1))
            if self._separator("]"):
                self.path = outer
                return items

    async def _object(self, depth: int) -> dict[str, Any]:
        self._position += 1
        members: dict[str, Any] = {}
        if self._text[self._skip()] == "}":
            self._position += 1
            return members
        outer = self.path
        while True:
            start = self._skip()
            if self._text[start] != '"':
                raise json.JSONDecodeError("Expecting property name", self._text, start)
            key, self._position = self._decoder.raw_decode(self._text, start)
            if self._text[self._skip()] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", self._text, self._position)
            self._position += 1
            self.path = (*outer, key)
            members[key] = await self._value(depth + 1)
            if self._separator("}"):
                self.path = outer
                return members

    def _separator(self, closing: str) -> bool:
        """Step over `,` (False: more follows) or the closing bracket (True)."""
        char = self._text[self._skip()]
        self._position += 1
        if char == closing:
            return True
        if char != ",":
            raise json.JSONDecodeError(f"Expecting ',' or '{closing}'", self._text, self._position - 1)
        return False

    def _skip(self) -> int:
        match = _WHITESPACE.match(self._text, self._position)
        self._position = match.end() if match else self._position
        return self._position


def _check_array_lengths(data: Any) -> None:
    """The limit the sliced parser applies while parsing, applied to a body parsed in one go."""
    stack: list[tuple[Any, Path]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) >= _SLICED_DEPTH:
            continue
        if isinstance(value, list):
            if len(value) > MAX_ARRAY_ITEMS:
                raise _too_many(_param(path))
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
        elif isinstance(value, dict):
            stack.extend((item, (*path, key)) for key, item in value.items())


def _values(data: Any) -> Iterator[tuple[Any, Path]]:
    """Every value and dict key in `data`, depth first, with its path."""
    stack: list[tuple[Any, Path]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        yield value, path
        if isinstance(value, dict):
            for key, item in reversed(value.items()):
                yield key, (*path, key)
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in reversed(list(enumerate(value))))


def _check_text(value: Any, path: Path) -> None:
    if isinstance(value, str) and _SURROGATE.search(value):
        where = _param(path)
        raise invalid_request(
            f"Invalid value for '{where}': the text holds an unpaired UTF-16 surrogate (\\uD800–\\uDFFF), "
            "which is not a character.",
            param=where,
            code="invalid_value",
        )


def _param(path: Path) -> str:
    """`messages.0.content` for a path; text that cannot be sent back (a key with a lone surrogate) is
    escaped, and the whole is kept short."""
    text = ".".join(str(part) for part in path)
    if _SURROGATE.search(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text[:_MAX_PARAM_CHARS]


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


class _Unconvertible:
    """Stands in for a number Python will not convert, so its place in the body can be named."""


def _unconvertible_number(body: bytes) -> OpenAIError:
    def mark_int(text: str) -> Any:
        return _Unconvertible() if len(text.lstrip("-")) > _DIGITS_LIMIT else int(text)

    def mark_float(text: str) -> Any:
        return float(text) if math.isfinite(float(text)) else _Unconvertible()

    try:
        data = json.loads(
            body, parse_int=mark_int, parse_float=mark_float, parse_constant=lambda _: _Unconvertible()
        )
    except (ValueError, RecursionError):  # something else is wrong with it too
        return invalid_request(_UNPARSABLE)
    where = next((_param(path) for value, path in _values(data) if isinstance(value, _Unconvertible)), "")
    return _number_error(where)


def _number_error(where: str) -> OpenAIError:
    return invalid_request(
        f"Invalid value for '{where}': numbers must be finite, and integers at most "
        f"{_DIGITS_LIMIT} digits long.",
        param=where or None,
        code="invalid_value",
    )


def _too_many(where: str) -> OpenAIError:
    return invalid_request(
        f"Invalid value for '{where}': an array may hold at most {MAX_ARRAY_ITEMS} items.",
        param=where or None,
        code="array_above_max_length",
    )
