"""Relay keys: what a key is allowed (models, rate, credit budgets), how it is made, hashed and shown.

The secret (`sk-relay-…`) is shown once, at creation; only its sha256 is stored. Keys carry 256 random
bits, so a plain hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from onemin_relay.config import check_rate_limit

RELAY_KEY_PREFIX = "sk-relay-"

KeyState = Literal["active", "revoked", "expired"]


def new_secret() -> str:
    return RELAY_KEY_PREFIX + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_key_id() -> str:
    # `rk_` keeps relay key ids apart from passthrough key hashes (16 hex digits) in every namespace.
    return f"rk_{secrets.token_hex(8)}"


@dataclass(frozen=True)
class RelayKey:
    id: str
    name: str
    secret_hash: str
    hint: str  # the secret's first and last characters, to recognise it in a list
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    models: tuple[str, ...] = ()  # glob patterns (`gpt-4o*`, `claude-*`); empty: every model
    rate_limit: str = ""  # e.g. "60/minute"; empty: none beyond RATE_LIMIT
    daily_budget: float | None = None  # credits per UTC day
    monthly_budget: float | None = None  # credits per UTC month

    def state(self, now: float | None = None) -> KeyState:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (time.time() if now is None else now):
            return "expired"
        return "active"

    def allows(self, model: str) -> bool:
        return not self.models or any(fnmatchcase(model, pattern) for pattern in self.models)

    def public(self) -> dict[str, Any]:
        """What the admin API and the CLI show: everything but the hash of the secret."""
        shown = dataclasses.asdict(self)
        del shown["secret_hash"]
        shown["models"] = list(self.models)
        shown["state"] = self.state()
        return shown

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> RelayKey:
        fields = json.loads(text)
        fields["models"] = tuple(fields.get("models") or ())
        return cls(**fields)


def issue_key(
    name: str,
    *,
    models: tuple[str, ...] = (),
    rate_limit: str = "",
    daily_budget: float | None = None,
    monthly_budget: float | None = None,
    expires_at: int | None = None,
) -> tuple[RelayKey, str]:
    """A new key and its secret (the only time the secret exists outside the caller's hands)."""
    secret = new_secret()
    key = RelayKey(
        id=new_key_id(),
        name=name,
        secret_hash=secret_hash(secret),
        hint=f"{secret[:13]}…{secret[-4:]}",
        created_at=int(time.time()),
        expires_at=expires_at,
        models=models,
        rate_limit=rate_limit,
        daily_budget=daily_budget,
        monthly_budget=monthly_budget,
    )
    return key, secret


class KeyRequest(BaseModel):
    """What the admin API and the CLI accept to create a key (validated the same way for both)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    models: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=100
    )
    rate_limit: str = ""
    daily_budget: float | None = Field(None, ge=0, allow_inf_nan=False)
    monthly_budget: float | None = Field(None, ge=0, allow_inf_nan=False)
    expires_at: int | None = Field(None, gt=0, description="unix seconds")
    expires_in_days: float | None = Field(None, gt=0, le=36500, allow_inf_nan=False)

    _rate_limit = field_validator("rate_limit")(check_rate_limit)

    def issue(self) -> tuple[RelayKey, str]:
        expires_at = self.expires_at
        if self.expires_in_days is not None:
            expires_at = int(time.time() + self.expires_in_days * 86400)
        return issue_key(
            self.name.strip(),
            models=tuple(pattern.strip() for pattern in self.models),
            rate_limit=self.rate_limit,
            daily_budget=self.daily_budget,
            monthly_budget=self.monthly_budget,
            expires_at=expires_at,
        )
