"""Every tunable of the simulator, including one switch per behaviour the reference leaves open (§18)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from onemin_relay.simulator.faults import parse_faults

MiB = 1024 * 1024


class SimulatorConfig(BaseModel):
    """Immutable; `/_sim/config` builds a new one with `updated(...)`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- keys --------------------------------------------------------------------------------------
    api_keys: frozenset[str] | None = Field(
        None, description="Accepted API-KEY values; None accepts any non-empty key (the demo)"
    )

    # --- chat (/api/chat-with-ai) ------------------------------------------------------------------
    require_type: bool = Field(True, description="§18.7: newest docs say `type` must be UNIFY_CHAT_WITH_AI")
    chat_model_error_shape: Literal["A", "B"] = Field(
        "A", description="§18.3: unknown/DISABLED chat model → 400 UNSUPPORTED_MODEL in shape A or shape B"
    )
    non_vision_images: Literal["error", "ignore"] = Field(
        "error",
        description="§18.11: images for a model without IMAGE input → 400 INVALID_REQUEST, or ignored",
    )
    stream_chunk_chars: int = Field(16, ge=1, description="Characters per SSE `content` event")
    empty_first_content: bool = Field(
        True, description='Open streams with `content: ""` as the live API does'
    )
    stream_result_metadata: bool = Field(
        True, description="§18.1: the streamed `result` record carries the credit/token metadata (else null)"
    )
    done_after_error: bool = Field(False, description="§18.2: send `done` after a mid-stream `error`")
    failed_status: Literal["FAILED", "FAILURE"] = Field(
        "FAILED", description="§18.4: status of failed records"
    )
    result_failed_status: Literal["FAILED", "FAILURE"] = Field(
        "FAILURE", description="§18.4: status of failed records on GET /api/results/{uuid}"
    )
    tts_binary: bool = Field(
        False, description="§18.13: TEXT_TO_SPEECH answers the bare audio file, as its docs page claims"
    )
    legacy_chat: bool = Field(False, description="Accept CHAT_WITH_* on /api/features (raw-text streaming)")

    # --- accounting ----------------------------------------------------------------------------------
    rate_limit_per_minute: int = Field(180, ge=0, description="Requests per key per minute; 0 = unlimited")
    rate_limit_retry_after: bool = Field(True, description="§18.9: a rate-limit 429 carries Retry-After")
    credit_limit: int = Field(214_748_364, ge=0, description="teamUser.creditLimit of every key")
    credit_scale: float = Field(
        1.0, ge=0, description="credits = tokens × creditMetadata price × scale (§14)"
    )
    insufficient_credits_status: int = Field(
        402, ge=400, le=599, description="§18.3: status when out of credit"
    )
    insufficient_credits_shape: Literal["endpoint", "A", "B"] = Field(
        "endpoint", description="§18.3: error shape when out of credit; `endpoint` = that endpoint's shape"
    )

    # --- storage and async ---------------------------------------------------------------------------
    asset_store_bytes: int = Field(256 * MiB, gt=0, description="Total bytes kept; oldest assets are evicted")
    asset_max_bytes: int = Field(
        100 * MiB, gt=0, description="Largest single upload (§18.6: real limit unknown)"
    )
    max_json_bytes: int = Field(32 * MiB, gt=0)
    history_chars: int = Field(
        64 * MiB, ge=0, description="Characters of conversation history kept in all; the oldest messages go"
    )
    async_results_bytes: int = Field(
        64 * MiB, ge=0, description="Request bytes of async records kept for polling; oldest forgotten first"
    )
    async_polls: int = Field(1, ge=0, description="Polls of an async record that still answer PROCESSING")
    public_base_url: str | None = Field(
        None, description="Base of CDN/signed URLs; default: the request's own"
    )

    # --- faults and diagnostics ----------------------------------------------------------------------
    faults: tuple[str, ...] = Field((), description='Faults applied to every call, e.g. ("delay=20", "crlf")')
    request_log_size: int = Field(500, ge=0, description="Calls kept by GET /_sim/requests")
    request_log_bytes: int = Field(
        64 * MiB, ge=0, description="Bytes of JSON bodies the request log keeps; the oldest calls go first"
    )

    @field_validator("faults")
    @classmethod
    def _check_faults(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for spec in value:
            parse_faults(spec)  # raises ValueError naming an unknown fault
        return value

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    def updated(self, changes: dict[str, Any]) -> SimulatorConfig:
        """A validated copy with `changes` applied (raises pydantic.ValidationError)."""
        return SimulatorConfig.model_validate({**self.model_dump(), **changes})
