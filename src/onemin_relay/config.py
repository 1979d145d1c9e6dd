"""The one settings object: every tunable of the relay, read from the environment (and `.env`)."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from onemin_relay.upstream.features import features_named

RATE_LIMIT_PATTERN = re.compile(r"^\s*\d+\s*(/|per)\s*\d*\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)

CommaList = Annotated[list[str], NoDecode]


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def check_rate_limit(value: str) -> str:
    """A rate limit as `limits` parses it (`60/minute`, `10 per second`), or empty for none."""
    if value and not RATE_LIMIT_PATTERN.match(value):
        raise ValueError("expected a limit such as '60/minute' or '10 per second'")
    if value and int(re.split(r"\D", value.strip(), maxsplit=1)[0]) == 0:
        raise ValueError("a limit of 0 would refuse every request; leave it empty to turn it off")
    return value.strip()


def parse_memcached_url(url: str) -> list[tuple[str, int]]:
    """`memcached://host:port[,host:port…]` → the servers (port 11211 when left out).

    Raises ValueError for a server without a host or with a port that is not a port number."""
    servers = []
    for part in url.removeprefix("memcached://").split("/")[0].split(","):
        location = urlsplit(f"//{part.strip()}")
        if not location.hostname:
            raise ValueError("expected memcached://host:port (several: memcached://a:11211,b:11211)")
        servers.append((location.hostname, location.port or 11211))  # `.port` raises on a bad port
    return servers


class Settings(BaseSettings):
    """Relay configuration. Field names are the environment variable names (case-insensitive)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- serving -------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(5001, ge=0, le=65535)
    web_concurrency: int = Field(1, ge=1, le=64, description="Worker processes of `serve` (`--workers`)")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    cors_allow_origins: CommaList = Field(default_factory=lambda: ["*"])
    max_request_bytes: int = Field(64 * 1024 * 1024, gt=0, description="Largest JSON body accepted")

    # --- upstream (1min.ai) --------------------------------------------------------------------
    onemin_api_url: str = "https://api.1min.ai"
    onemin_asset_url: str = "https://asset.1min.ai"
    upstream_connect_timeout: float = Field(10.0, gt=0)
    upstream_timeout: float = Field(120.0, gt=0, description="Read timeout for chat calls")
    upstream_media_timeout: float = Field(300.0, gt=0, description="Read timeout for image/audio features")
    upstream_max_retries: int = Field(2, ge=0, le=10)
    upstream_max_in_flight: int = Field(
        2048, gt=0, description="1min.ai calls (streams included) one process runs at once; more get a 503"
    )
    # Retired (the connection pool has no cap now); read only to warn an operator who still sets it.
    upstream_max_connections: int | None = None
    upstream_max_download_bytes: int = Field(100 * 1024 * 1024, gt=0)
    upstream_breaker_failures: int = Field(5, ge=0, description="Failures in a row that open a circuit")
    upstream_breaker_cooldown: float = Field(30.0, gt=0, description="Seconds an open circuit fails fast")

    # --- models ----------------------------------------------------------------------------------
    model_cache_ttl: float = Field(300.0, ge=0)
    subset_of_one_min_permitted_models: CommaList = Field(default_factory=list)
    permit_models_from_subset_only: bool = False
    # Features whose models `GET /v1/models` lists when the client does not filter (empty: all).
    models_list: CommaList = Field(default_factory=list)
    # Whether the model list and the audio probes answer a request that sends no key (a sent key is always
    # checked). Unset: yes with AUTH_MODE=passthrough (1min.ai's catalogue is public), no with relay keys.
    public_models: bool | None = None

    # --- chat --------------------------------------------------------------------------------------
    stream_keepalive_seconds: float = Field(15.0, gt=0)
    tool_repair_attempts: int = Field(1, ge=0, le=3, description="Re-asks for a malformed call or JSON")
    tools_prompt_max_chars: int = Field(4000, ge=500, description="Size the tools section aims to fit")

    # --- images ------------------------------------------------------------------------------------
    # Map a size the model does not take to its nearest one (header x-onemin-size-adjusted) instead of a
    # 400. Off: OpenAI answers such a size with a 400 too.
    image_size_adjust: bool = False

    # --- fetching of image URLs sent by clients ------------------------------------------------
    fetch_allow_private: bool = False
    fetch_max_bytes: int = Field(20 * 1024 * 1024, gt=0)
    fetch_timeout: float = Field(15.0, gt=0)

    # --- uploads -----------------------------------------------------------------------------------
    max_audio_upload_bytes: int = Field(25 * 1024 * 1024, gt=0)
    max_image_upload_bytes: int = Field(20 * 1024 * 1024, gt=0)
    max_file_upload_bytes: int = Field(512 * 1024 * 1024, gt=0)

    # --- state -------------------------------------------------------------------------------------
    data_dir: Path = Path("data")
    state_url: str = ""
    memcached_host: str = ""
    memcached_port: int = Field(11211, ge=1, le=65535)
    file_retention: float = Field(30 * 24 * 3600.0, gt=0, description="Seconds a file is kept")
    retention_sweep_interval: float = Field(600.0, gt=0)

    # --- rate limiting -----------------------------------------------------------------------------
    rate_limit: str = ""
    rate_limit_per_ip: str = ""
    rate_limit_strategy: Literal["moving-window", "fixed-window", "sliding-window-counter"] = "moving-window"
    upstream_rate_guard: bool = False
    upstream_rate_guard_limit: str = "180/minute"

    # --- operators: relay keys, budgets, usage ledger, admin API -------------------------------
    auth_mode: Literal["passthrough", "keys", "both"] = "passthrough"
    onemin_api_keys: CommaList = Field(default_factory=list)
    onemin_api_keys_file: Path | None = None
    admin_token: str = ""
    usage_retention: float = Field(90 * 24 * 3600.0, gt=0, description="Seconds a ledger record is kept")

    # --- observability -----------------------------------------------------------------------------
    metrics_token: str = Field("", repr=False)  # empty: /metrics is open (it holds no keys or callers)
    otel_exporter_otlp_endpoint: str = ""  # empty: no tracing (OpenTelemetry is not even imported)

    _split = field_validator(
        "cors_allow_origins",
        "subset_of_one_min_permitted_models",
        "onemin_api_keys",
        "models_list",
        mode="before",
    )(_split_commas)

    @field_validator("models_list")
    @classmethod
    def _check_models_list(cls, value: list[str]) -> list[str]:
        features_named(value)  # raises ValueError naming an unknown feature
        return value

    _rate_limits = field_validator("rate_limit", "rate_limit_per_ip", "upstream_rate_guard_limit")(
        check_rate_limit
    )

    @field_validator("onemin_api_url", "onemin_asset_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("expected an http(s) URL")
        return value.rstrip("/")

    @field_validator("state_url")
    @classmethod
    def _check_state_url(cls, value: str) -> str:
        # Checked here, as the backends will read it, so a malformed URL stops the start with a message
        # naming STATE_URL (messages never repeat the URL: it may hold a Redis password).
        if value.startswith("memcached://"):
            parse_memcached_url(value)
        elif value.startswith(("redis://", "rediss://")):
            urlsplit(value).port  # noqa: B018 (raises ValueError for a port that is not a port number)
        elif value and not value.startswith("sqlite://"):
            raise ValueError("expected redis://…, rediss://…, memcached://host:port or sqlite:///path")
        return value

    @model_validator(mode="after")
    def _memcached_compat(self) -> Settings:
        # The original 1min-relay configured memcached with MEMCACHED_HOST / MEMCACHED_PORT.
        if not self.state_url and self.memcached_host:
            self.state_url = f"memcached://{self.memcached_host}:{self.memcached_port}"
            try:
                parse_memcached_url(self.state_url)
            except ValueError:
                raise ValueError("MEMCACHED_HOST must be a host name or address alone") from None
        return self

    @model_validator(mode="after")
    def _upstream_keys_for_relay_keys(self) -> Settings:
        if self.onemin_api_keys_file is not None:
            try:
                lines = self.onemin_api_keys_file.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"ONEMIN_API_KEYS_FILE cannot be read ({type(exc).__name__})") from None
            file_keys = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
            self.onemin_api_keys = [*self.onemin_api_keys, *file_keys]
        # Messages never repeat a key: only its position in the list.
        for number, key in enumerate(self.onemin_api_keys, 1):
            if not re.fullmatch(r"[\x21-\x7e]{1,512}", key):
                raise ValueError(f"upstream key number {number} holds characters that cannot be sent")
        self.onemin_api_keys = list(dict.fromkeys(self.onemin_api_keys))
        if self.auth_mode != "passthrough" and not self.onemin_api_keys:
            raise ValueError(
                f"AUTH_MODE={self.auth_mode} needs the relay's 1min.ai key(s) in ONEMIN_API_KEYS or "
                "ONEMIN_API_KEYS_FILE"
            )
        return self

    @cached_property
    def permitted_models(self) -> frozenset[str]:
        return frozenset(self.subset_of_one_min_permitted_models)

    @property
    def models_public(self) -> bool:
        """PUBLIC_MODELS, or its default: public only when the relay does not hand out keys of its own."""
        return self.public_models if self.public_models is not None else self.auth_mode == "passthrough"

    @cached_property
    def listed_features(self) -> frozenset[str] | None:
        """The upstream features MODELS_LIST names, or None: list every served feature."""
        return features_named(self.models_list) if self.models_list else None


class ConfigError(Exception):
    """Raised at start-up when the environment holds an invalid setting; the message names it."""


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings, turning pydantic's report into one readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(part) for part in err["loc"]).upper() or "settings"
            problems.append(f"{name}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
