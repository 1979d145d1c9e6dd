"""Which upstream feature a model serves: 404 for a model nobody knows, 400 for a known one that lacks it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from onemin_relay.api.auth import require_model_allowed
from onemin_relay.errors import OpenAIError, invalid_request
from onemin_relay.observability import current_record
from onemin_relay.upstream.features import FEATURE_NAMES, SERVED_FEATURES

if TYPE_CHECKING:
    from onemin_relay.app import RelayContext
    from onemin_relay.upstream.catalogue import ModelInfo


async def require_capability(context: RelayContext, model: str, feature: str, capability: str) -> ModelInfo:
    """The catalogue entry of `model` under `feature`; `capability` names the feature for people.

    A relay key not allowed `model` gets its 403 here, before anything goes upstream."""
    require_model_allowed(model)
    try:
        info = await context.catalogue.require(model, feature)
    except OpenAIError as exc:
        known = await context.catalogue.find(model) if exc.status == 404 else None
        if known is not None:
            serves = ", ".join(FEATURE_NAMES[f] for f in SERVED_FEATURES if f in known.features)
            raise invalid_request(
                f"Model `{model}` does not support {capability} (it serves: {serves}). "
                f"GET /v1/models?feature={FEATURE_NAMES[feature]} lists the models that do.",
                param="model",
                code="unsupported_model",
            ) from None
        raise
    record = current_record()
    record.model_known = True  # a catalogue model: bounded, so it may label metrics
    if record.model is None:
        record.model = model
    record.prices = info.credit_metadata  # media calls' credits are estimated from it
    return info
