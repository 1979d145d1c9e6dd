"""Structured output (`response_format`) and argument checks, as pure functions: what the model is told,
finding the JSON value in what it wrote, and validating it with a JSON Schema library (`jsonschema`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jsonschema import exceptions as schema_exceptions
from jsonschema import validators
from referencing.exceptions import Unresolvable

from onemin_relay.core.types import OutputFormat

_FENCED = re.compile(r"```[\w+-]*[ \t]*\n(.*?)```", re.DOTALL)
_VALUE_START = re.compile(r"[{\[]")
_MAX_CANDIDATES = 50  # JSON starts tried in prose: bounded, so a hostile answer costs bounded time
_MAX_PROBLEMS = 5
# A schema is compiled and checked on the event loop: larger ones are refused (OpenAI bounds them too).
MAX_SCHEMA_CHARS = 64 * 1024


def format_section(output: OutputFormat) -> str:
    """The instruction for a JSON output format ("" for free text)."""
    if output.kind == "json_object":
        return "Answer with one JSON object and nothing else: no prose, no code fence."
    if output.kind == "json_schema":
        name = f" ({output.name})" if output.name else ""
        about = f" {output.description}" if output.description else ""
        schema = json.dumps(output.schema or {}, ensure_ascii=False, separators=(",", ":"))
        return (
            f"Answer with one JSON value that matches this JSON Schema{name}, and nothing else: no prose, "
            f"no code fence.{about}\n{schema}"
        )
    return ""


def canonical_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def extract_json(text: str) -> tuple[Any, None] | tuple[None, str]:
    """The JSON value in an answer: the whole text, else a fenced block, else the first JSON object or
    array in the prose. (value, None), or (None, why there is none)."""
    stripped = text.strip()
    try:
        return json.loads(stripped), None
    except (ValueError, RecursionError) as exc:
        error = f"the answer is not valid JSON ({exc})"
    for block in _FENCED.finditer(stripped):
        try:
            return json.loads(block.group(1)), None
        except (ValueError, RecursionError):
            continue
    decoder = json.JSONDecoder()
    for count, start in enumerate(_VALUE_START.finditer(stripped)):
        if count == _MAX_CANDIDATES:
            break
        try:
            value, _ = decoder.raw_decode(stripped, start.start())
        except (ValueError, RecursionError):
            continue
        return value, None
    return None, error


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Any:
    schema = json.loads(schema_text)
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _schema_key(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def schema_problem(schema: Mapping[str, Any]) -> str | None:
    """Why `schema` is not a usable JSON Schema, or None when it is."""
    try:
        key = _schema_key(schema)
        if len(key) > MAX_SCHEMA_CHARS:
            return f"the schema is larger than {MAX_SCHEMA_CHARS} characters of JSON"
        _validator(key)
    except schema_exceptions.SchemaError as exc:
        return exc.message
    except (ValueError, RecursionError, TypeError) as exc:  # a schema jsonschema cannot even read
        return str(exc)
    return None


def value_problems(schema: Mapping[str, Any], value: Any) -> list[str]:
    """What in `value` does not match `schema` (a few, each naming where), or [] when it matches (or when
    the schema cannot judge it: dialects answer an invalid schema with a 400 first, via `schema_problem`)."""
    problems: list[str] = []
    try:
        validator = _validator(_schema_key(schema))
        for error in validator.iter_errors(value):
            where = "/".join(str(part) for part in error.absolute_path)
            problems.append(f"{'at ' + where + ': ' if where else ''}{error.message}")
            if len(problems) == _MAX_PROBLEMS:
                break
    except (schema_exceptions.SchemaError, Unresolvable, re.error, RecursionError, ValueError, TypeError):
        # A `$ref` the relay will not fetch, or a pattern Python cannot compile: the value is not judged.
        return []
    return problems
