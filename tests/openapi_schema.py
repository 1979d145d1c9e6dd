"""Validate relay responses against OpenAI's own OpenAPI description (shared/reference/openai-openapi)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "reference" / "openai-openapi" / "openapi.yaml"
_SPEC_URI = "urn:openai-openapi"


@cache
def _spec() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_PATH.open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader either way
    result: dict[str, Any] = _allow_nulls(spec)
    return result


def _allow_nulls(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` (which JSON Schema ignores) as the JSON Schema that allows null."""
    if isinstance(node, list):
        return [_allow_nulls(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _allow_nulls(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is not True:
        return converted
    if isinstance(converted.get("type"), str):
        converted["type"] = [converted["type"], "null"]
        if isinstance(converted.get("enum"), list) and None not in converted["enum"]:
            converted["enum"] = [*converted["enum"], None]
        return converted
    return {"anyOf": [converted, {"type": "null"}]}


@cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(_spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)
    return registry


def assert_matches_schema(schema_name: str, instance: Any) -> None:
    """Raise `jsonschema.ValidationError` unless `instance` is valid for components.schemas[schema_name]."""
    if schema_name not in _spec()["components"]["schemas"]:
        raise KeyError(f"no schema named {schema_name!r} in the OpenAI spec")
    schema = {"$ref": f"{_SPEC_URI}#/components/schemas/{schema_name}"}
    validator = jsonschema.Draft202012Validator(schema, registry=_registry())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        raise errors[0]
