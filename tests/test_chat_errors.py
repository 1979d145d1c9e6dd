"""Unit tests of `openai_error_from_upstream`: each upstream failure → the OpenAI error clients expect."""

from __future__ import annotations

from typing import Any

import pytest

from onemin_relay.errors import anthropic_error
from onemin_relay.translate.errors import openai_error_from_upstream
from onemin_relay.upstream.errors import UpstreamError


@pytest.mark.parametrize(
    ("status", "code", "expected_status", "expected_type", "expected_code"),
    [
        (401, "UNAUTHORIZED", 401, "invalid_request_error", "invalid_api_key"),
        (0, "INVALID_API_KEY", 401, "invalid_request_error", "invalid_api_key"),
        (400, "UNSUPPORTED_MODEL", 404, "invalid_request_error", "model_not_found"),
        (404, "HTTP_ERROR", 404, "invalid_request_error", "model_not_found"),
        (400, "INVALID_REQUEST", 400, "invalid_request_error", "invalid_request"),
        (
            422,
            "PROMPT_OBJECT_VALIDATION_FAILED",
            400,
            "invalid_request_error",
            "prompt_object_validation_failed",
        ),
        (400, "UNSUPPORTED_FILE_TYPE", 400, "invalid_request_error", "unsupported_file_type"),
        (429, "RATE_LIMITED", 429, "requests", "rate_limit_exceeded"),
        (402, "INSUFFICIENT_CREDITS", 429, "insufficient_quota", "insufficient_quota"),
        (400, "INSUFFICIENT_CREDITS", 429, "insufficient_quota", "insufficient_quota"),
        (503, "HTTP_ERROR", 503, "server_error", "service_unavailable"),
        (500, "HTTP_ERROR", 502, "server_error", "upstream_error"),
        (502, "HTTP_ERROR", 502, "server_error", "upstream_error"),
        (522, "HTTP_ERROR", 504, "server_error", "upstream_timeout"),
        (0, "TIMEOUT", 504, "server_error", "upstream_timeout"),
        (0, "CONNECT_ERROR", 502, "server_error", "upstream_error"),
        (0, "STREAM_INTERRUPTED", 502, "server_error", "upstream_error"),
        (200, "FAILED", 502, "server_error", "upstream_error"),
        (200, "STREAM_ERROR", 502, "server_error", "upstream_error"),
        (200, "INVALID_RESPONSE", 502, "server_error", "upstream_error"),
        (403, "HTTP_ERROR", 403, "permission_error", "upstream_forbidden"),
    ],
)
def test_status_type_and_code(
    status: int, code: str, expected_status: int, expected_type: str, expected_code: str
) -> None:
    error = openai_error_from_upstream(UpstreamError(status, code, "upstream says no"))
    assert (error.status, error.type, error.code) == (expected_status, expected_type, expected_code)
    assert "upstream says no" in error.message


def test_exhausted_credits_tell_sdks_not_to_retry() -> None:
    message = "You do not have enough credits to perform this request"
    error = openai_error_from_upstream(UpstreamError(402, "INSUFFICIENT_CREDITS", message))
    assert error.headers == {"x-should-retry": "false"}
    assert message in error.message


def test_a_rate_limit_that_speaks_of_a_quota_is_still_a_rate_limit() -> None:
    error = openai_error_from_upstream(
        UpstreamError(429, "RATE_LIMITED", "Request quota per minute exceeded")
    )
    assert (error.status, error.code) == (429, "rate_limit_exceeded")
    assert "x-should-retry" not in error.headers
    worded = openai_error_from_upstream(UpstreamError(400, "UNKNOWN_ERROR", "Credit limit reached"))
    assert worded.code == "insufficient_quota"


def test_rate_limit_passes_retry_after_rounded_up() -> None:
    error = openai_error_from_upstream(
        UpstreamError(429, "RATE_LIMITED", "Too many requests", retry_after=2.2)
    )
    assert error.headers == {"retry-after": "3"}
    assert openai_error_from_upstream(UpstreamError(429, "RATE_LIMITED", "x")).headers == {}


def test_model_errors_point_at_the_model_param() -> None:
    error = openai_error_from_upstream(UpstreamError(400, "UNSUPPORTED_MODEL", "Model x is not supported"))
    assert error.param == "model"
    assert error.message == "Model x is not supported"


@pytest.mark.parametrize(
    ("details", "shown"),
    [
        ([{"field": "prompt", "message": "prompt must be a string"}], "prompt: prompt must be a string"),
        (["first", "second"], "first; second"),
        ({"not": "a list"}, ""),
    ],
)
def test_validation_details_are_kept(details: Any, shown: str) -> None:
    error = openai_error_from_upstream(
        UpstreamError(422, "PROMPT_OBJECT_VALIDATION_FAILED", "Invalid", details)
    )
    assert error.message == (f"Invalid ({shown})" if shown else "Invalid")


def test_body_is_openai_shaped() -> None:
    body = openai_error_from_upstream(UpstreamError(401, "UNAUTHORIZED", "Invalid or missing API key")).body()
    assert set(body["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    ("status", "code", "anthropic_status", "anthropic_type"),
    [
        (401, "UNAUTHORIZED", 401, "authentication_error"),
        (404, "HTTP_ERROR", 404, "not_found_error"),
        (400, "INVALID_REQUEST", 400, "invalid_request_error"),
        (429, "RATE_LIMITED", 429, "rate_limit_error"),
        (402, "INSUFFICIENT_CREDITS", 402, "billing_error"),
        (403, "HTTP_ERROR", 403, "permission_error"),
        (413, "HTTP_ERROR", 413, "request_too_large"),
        (503, "HTTP_ERROR", 529, "overloaded_error"),
        (500, "HTTP_ERROR", 500, "api_error"),
        (0, "TIMEOUT", 504, "timeout_error"),
        (200, "FAILED", 500, "api_error"),
    ],
)
def test_anthropic_routes_get_anthropics_status_and_type(
    status: int, code: str, anthropic_status: int, anthropic_type: str
) -> None:
    error = openai_error_from_upstream(UpstreamError(status, code, "upstream says no"))
    answered, body = anthropic_error(error)
    assert (answered, body["type"], body["error"]["type"]) == (anthropic_status, "error", anthropic_type)
    assert "upstream says no" in body["error"]["message"]
