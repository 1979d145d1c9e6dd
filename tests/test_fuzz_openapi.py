"""Schemathesis over the relay's own routes, from OpenAI's OpenAPI document: valid and invalid requests
generated from the schemas of every operation the relay serves must never get a 5xx, and every refusal
is an OpenAI error.

Bounded for `make test` (a few examples per operation); `make fuzz` runs the same with the `fuzz`
Hypothesis profile (see tests/fuzzing.py).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from onemin_relay.serving import BackgroundServer
from tests.fuzzing import AUTH, assert_not_broken, relay_operations
from tests.openapi_schema import OPENAI, vendor_spec


@cache
def openai_schema() -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(vendor_spec(OPENAI))


@cache
def spec_operations() -> list[Any]:
    return [result.ok() for result in openai_schema().get_all_operations() if isinstance(result, Ok)]


def spec_operation(method: str, path: str) -> Any:
    """The OpenAI operation for a relay route (`/v1/models/{model_id:path}` → `/models/{model}`)."""
    for operation in spec_operations():
        if operation.method.upper() == method and _same_path(operation.path, path):
            return operation
    return None


def _same_path(spec_path: str, relay_path: str) -> bool:
    spec_parts, relay_parts = (
        spec_path.strip("/").split("/"),
        relay_path.removeprefix("/v1").strip("/").split("/"),
    )
    return len(spec_parts) == len(relay_parts) and all(
        spec == relay or (spec.startswith("{") and relay.startswith("{"))
        for spec, relay in zip(spec_parts, relay_parts, strict=True)
    )


OPERATIONS = [(method, path) for method, path in relay_operations() if path.startswith("/v1/")]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_generated_request_breaks_the_relay(
    relay_server: BackgroundServer, method: str, path: str, mode: GenerationMode
) -> None:
    operation = spec_operation(method, path)
    if operation is None:
        pytest.skip(f"{method} {path} is not in OpenAI's document (the property test covers it)")

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=f"{relay_server.url}/v1", headers=AUTH, timeout=30)
        content_type = ",".join(response.headers.get("content-type", []))
        assert_not_broken(response.status_code, content_type, response.content, case.as_curl_command())

    check()
