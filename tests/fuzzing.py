"""What every fuzz test shares: the relay's routes, the Hypothesis budgets, and the one property checked.

Profiles (environment variable `HYPOTHESIS_PROFILE`):
- `bounded` (default, `make test`): few examples, derandomized, so the suite stays fast and repeatable;
- `fuzz` (`make fuzz`): hundreds of random examples per route, failures kept in `.hypothesis/`.
"""

from __future__ import annotations

import json
import os

import hypothesis
from hypothesis import HealthCheck
from starlette.routing import Route

from onemin_relay.app import create_app
from tests.harness import KEY_A, relay_settings

AUTH = {"Authorization": f"Bearer {KEY_A}"}

_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
hypothesis.settings.register_profile(
    "bounded",
    max_examples=4,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_SLOW_IS_FINE,
    print_blob=True,
)
hypothesis.settings.register_profile(
    "fuzz", max_examples=300, deadline=None, suppress_health_check=_SLOW_IS_FINE, print_blob=True
)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "bounded"))


def relay_operations() -> list[tuple[str, str]]:
    """Every (method, path) the relay serves, read from the app itself so a new route is fuzzed too."""
    from pathlib import Path

    app = create_app(relay_settings("http://127.0.0.1:9", Path("unused")))
    operations = []
    for route in app.routes:
        if isinstance(route, Route):
            operations += [(method, route.path) for method in sorted(route.methods or ()) if method != "HEAD"]
    return operations


def assert_not_broken(status: int, content_type: str, body: bytes, request: str) -> None:
    """No 5xx of the relay's own making, and every refusal an OpenAI (or, on Anthropic routes, an
    Anthropic) error object."""
    assert status < 500 or (status in (502, 503, 504) and b"1min.ai" in body), (status, body[:500], request)
    if status < 400:
        return
    assert content_type.startswith("application/json"), (status, content_type, body[:200], request)
    error = json.loads(body)["error"]
    assert isinstance(error, dict), (body[:500], request)
    assert isinstance(error.get("message"), str), (body[:500], request)
    assert error["message"], (body[:500], request)
    assert isinstance(error.get("type"), str), (body[:500], request)
