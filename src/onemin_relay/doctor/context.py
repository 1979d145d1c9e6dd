"""What the probes share: the client, the key, the simulator configuration they compare with, and what
earlier probes learnt (the live catalogue, the uploaded image, the speech to transcribe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from onemin_relay.doctor.observation import Masker, Observation
from onemin_relay.doctor.report import Item, Result
from onemin_relay.simulator.config import SimulatorConfig
from onemin_relay.upstream.client import Asset, OneMinClient

CHAT_FEATURE = "UNIFY_CHAT_WITH_AI"
PREFERRED_CHAT_MODEL = "gpt-4o-mini"  # cheap, and the reference's own example
SPEECH_MODEL = "tts-1"
TRANSCRIPTION_MODEL = "whisper-1"
NO_SUCH_MODEL = "1min-relay-doctor-no-such-model"
# The prompt of every billed chat: short, so it costs a few credits; the answer does not matter.
PROMPT = "This is a connectivity check from 1min-relay doctor. Reply with the single word OK."
SPOKEN_TEXT = "Hello there."


@dataclass
class Context:
    client: OneMinClient
    key: str
    assumed: SimulatorConfig
    mask: Masker
    live: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    image: Asset | None = None
    speech: tuple[bytes, str] | None = None  # audio bytes and their file extension
    chat_record: dict[str, Any] | None = None  # the record of the plain JSON chat
    cut_cost: int | None = None  # credits the cut stream cost, when the records around it tell

    def entry(self, feature: str, model_id: str) -> dict[str, Any] | None:
        for entry in self.live.get(feature, []):
            if entry.get("modelId") == model_id:
                return entry
        return None

    def active(self, feature: str, model_id: str) -> bool:
        entry = self.entry(feature, model_id)
        return entry is not None and str(entry.get("status", "")).upper() == "ACTIVE"

    @property
    def chat_model(self) -> str:
        """gpt-4o-mini when the live catalogue has it, else its cheapest active chat model."""
        if self.active(CHAT_FEATURE, PREFERRED_CHAT_MODEL) or not self.live.get(CHAT_FEATURE):
            return PREFERRED_CHAT_MODEL
        return cheapest(self.live[CHAT_FEATURE], lambda entry: True) or PREFERRED_CHAT_MODEL

    @property
    def text_only_model(self) -> str | None:
        """The cheapest active chat model that takes no images (for the §18.11 probe)."""
        return cheapest(self.live.get(CHAT_FEATURE, []), lambda entry: "IMAGE" not in _inputs(entry))

    def show(self, observation: Observation) -> str:
        return observation.describe(self.mask)


def _inputs(entry: dict[str, Any]) -> list[str]:
    modality = entry.get("modality")
    inputs = modality.get("INPUT") if isinstance(modality, dict) else None
    return [str(value).upper() for value in inputs] if isinstance(inputs, list) else []


def price(entry: dict[str, Any] | None, name: str) -> float | None:
    metadata = entry.get("creditMetadata") if entry else None
    value = metadata.get(name) if isinstance(metadata, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def cheapest(entries: list[dict[str, Any]], accept: Any) -> str | None:
    candidates = [
        (float(price(entry, "INPUT") or 0) + float(price(entry, "OUTPUT") or 0), str(entry["modelId"]))
        for entry in entries
        if str(entry.get("status", "")).upper() == "ACTIVE"
        and isinstance(entry.get("modelId"), str)
        and price(entry, "INPUT") is not None
        and accept(entry)
    ]
    return min(candidates)[1] if candidates else None


def verdict(ok: bool) -> Result:
    return "match" if ok else "differs"


def error_answer(status: int, shape: str, code: str) -> str:
    return f"{status} shape {shape} {code}"


def is_answer(observation: Observation, status: int, shape: str, code: str) -> bool:
    return observation.status == status and observation.shape == shape and observation.error_code == code


def meaning(observation: Observation, answers: dict[Any, tuple[int, str, str]]) -> Any:
    """The switch value whose answer (status, shape, code) `observation` is, or None for neither."""
    return next((value for value, answer in answers.items() if is_answer(observation, *answer)), None)


def endpoint_missing(observation: Observation) -> bool:
    """No usable answer at all: the path is gone (404/405), the service is down, or nothing came back."""
    return observation.status in (0, 404, 405) or observation.status >= 500


def item(
    id: str,
    title: str,
    result: Result,
    expected: str,
    observed: str,
    *,
    switch: tuple[str, ...] = (),
    suggestion: dict[str, Any] | None = None,
    breaking: bool = False,
    note: str = "",
) -> Item:
    return Item(id, title, result, expected, observed, switch, suggestion or {}, breaking, note)


def unseen(id: str, title: str, expected: str, observed: str, switch: tuple[str, ...], why: str) -> Item:
    """`?`: the call went through, but what the item asks about did not happen."""
    return item(id, title, "unknown", expected, observed, switch=switch, note=why)


def not_run(id: str, title: str, expected: str, why: str, switch: tuple[str, ...] = ()) -> Item:
    return item(id, title, "unknown", expected, f"not run: {why}", switch=switch)


def switch_item(
    ctx: Context,
    id: str,
    title: str,
    field: str,
    observed_value: Any,
    expected: str,
    observed: str,
) -> Item:
    """An item answered by one SimulatorConfig field: ✓ when the observation means its assumed value,
    ✗ with the value that would match when it means another, ✗ without one when it means neither."""
    assumed = getattr(ctx.assumed, field)
    if observed_value is None:
        return item(
            id,
            title,
            "differs",
            expected,
            observed,
            switch=(field,),
            note="no simulator switch reproduces this answer",
        )
    if observed_value == assumed:
        return item(id, title, "match", expected, observed, switch=(field,))
    return item(id, title, "differs", expected, observed, switch=(field,), suggestion={field: observed_value})
