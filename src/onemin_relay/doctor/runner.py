"""The order the probes run in, the credit confirmation between the free and the billed ones, and the
report at the end. Nothing here prints: progress and confirmation are callbacks (`command.py` wires them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from onemin_relay.api.auth import key_hash
from onemin_relay.config import Settings
from onemin_relay.doctor import billed, free
from onemin_relay.doctor.catalogue import catalogue_changes
from onemin_relay.doctor.context import Context
from onemin_relay.doctor.observation import Masker
from onemin_relay.doctor.report import Item, Report
from onemin_relay.simulator.catalogue import load_catalogue
from onemin_relay.simulator.config import SimulatorConfig
from onemin_relay.upstream.client import OneMinClient, RetryPolicy

BILLED_PROBES = (
    "a short chat as JSON and streamed, a stream cut by the client, a failing stream, a failed record, an "
    "out-of-credit refusal, an image for a text-only model, a few words of speech (plain and async) and "
    "their transcription"
)
Probe = Callable[[Context], Awaitable[Item]]
# After the catalogue (the probes pick their models from it), in this order.
FREE_PROBES: tuple[Probe, ...] = (
    free.key_accepted,
    free.key_rejected,
    free.chat_validation,
    free.refused_stream,
    free.type_required,
    free.chat_unknown_model,
    free.features_endpoint,
    free.legacy_chat,
    free.asset_round_trip,  # before the billed ones: the image probe sends this image
)
# After the plain, cut and streamed chats (their records tell what the cut cost); speech before transcription.
LATER_BILLED_PROBES: tuple[Probe, ...] = (
    billed.stream_error,
    billed.failed_status,
    billed.insufficient_credits,
    billed.non_vision_images,
    billed.speech,
    billed.transcription,
    billed.async_failed_status,
)


@dataclass(frozen=True)
class Options:
    spend_credits: bool = False
    yes: bool = False
    probe_rate_limit: bool = False
    assumed: SimulatorConfig = field(default_factory=SimulatorConfig)


async def run_doctor(
    settings: Settings,
    api_key: str,
    options: Options,
    *,
    progress: Callable[[Item], None] = lambda item: None,
    confirm: Callable[[int], Awaitable[bool]] | None = None,
) -> Report:
    """Probe the service at `settings.onemin_api_url` and compare it with `options.assumed`.

    `confirm(credits)` is asked before any billed call unless `options.yes`; without it nothing is billed.
    """
    # No retries: a retried 429 or 5xx would hide exactly what the doctor is there to see.
    client = OneMinClient(settings, retry=RetryPolicy(max_retries=0))
    ctx = Context(client, api_key, options.assumed, Masker(api_key))
    report = Report(settings.onemin_api_url, key_hash(api_key), spent_credits=False)

    def add(*items: Item) -> None:
        for item in items:
            report.items.append(item)
            progress(item)

    try:
        snapshot = load_catalogue()
        add(await free.catalogue(ctx, list(snapshot)))
        add(free.relay_models(ctx))
        for probe in FREE_PROBES:
            add(await probe(ctx))
        if options.spend_credits:
            credits = billed.estimate_credits(ctx)
            if options.yes or (confirm is not None and await confirm(credits)):
                report.spent_credits = True
                await _billed(ctx, add)
            else:
                report.notes.append(f"Billed probes not confirmed (about {credits} credits): none was made.")
        else:
            report.notes.append(f"Not checked without --spend-credits: {BILLED_PROBES}.")
        if options.probe_rate_limit:
            add(await free.rate_limit(ctx))
        else:
            report.notes.append(
                "Not checked without --probe-rate-limit: Retry-After on a rate-limit 429 (§18.9)."
            )
        report.catalogue_changes = catalogue_changes(snapshot, ctx.live)
    finally:
        await client.aclose()
    return report


async def _billed(ctx: Context, add: Callable[..., None]) -> None:
    add(await billed.chat_json(ctx))
    add(billed.credit_formula(ctx))
    cut = await billed.stream_cut(ctx)
    add(cut)
    stream_items = await billed.chat_stream(ctx)
    if ctx.cut_cost is not None:  # known only once the next record shows the usage
        cut.note = f"1min.ai billed {ctx.cut_cost} credits for it"
    add(*stream_items)
    for probe in LATER_BILLED_PROBES:
        add(await probe(ctx))
