"""Settings come from the environment, are validated at start-up, and name the variable that is wrong."""

from __future__ import annotations

import pytest

from onemin_relay.config import ConfigError, load_settings


def test_defaults_match_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")  # no .env file here
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 5001)
    assert settings.onemin_api_url == "https://api.1min.ai"
    assert settings.onemin_asset_url == "https://asset.1min.ai"
    assert settings.state_url == ""


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8080")
    monkeypatch.setenv("SUBSET_OF_ONE_MIN_PERMITTED_MODELS", "gpt-4o-mini, gpt-4o")
    monkeypatch.setenv("PERMIT_MODELS_FROM_SUBSET_ONLY", "true")
    monkeypatch.setenv("ONEMIN_API_URL", "http://127.0.0.1:9/")
    settings = load_settings()
    assert settings.port == 8080
    assert settings.permitted_models == {"gpt-4o-mini", "gpt-4o"}
    assert settings.permit_models_from_subset_only is True
    assert settings.onemin_api_url == "http://127.0.0.1:9"


def test_original_memcached_variables_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMCACHED_HOST", "10.0.0.5")
    monkeypatch.setenv("MEMCACHED_PORT", "11222")
    assert load_settings().state_url == "memcached://10.0.0.5:11222"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("LOG_LEVEL", "LOUD"),
        ("RATE_LIMIT", "lots"),
        ("RATE_LIMIT", "0/minute"),
        ("RATE_LIMIT_PER_IP", "00 per hour"),
        ("STATE_URL", "mysql://db"),
        ("STATE_URL", "memcached://"),
        ("STATE_URL", "memcached://cache:port"),
        ("STATE_URL", "redis://cache:port/0"),
        ("MEMCACHED_HOST", "cache:11211"),
        ("ONEMIN_API_URL", "ftp://example"),
        ("MODELS_LIST", "chat,embeddings"),
    ],
)
def test_a_bad_value_is_reported_by_its_variable_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_a_bad_state_url_is_reported_without_repeating_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_URL", "redis://:s3cret-password@cache:port/0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "s3cret-password" not in str(caught.value)
