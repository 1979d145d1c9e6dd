"""Picks the state backend from the settings. STUB."""

from onemin_relay.config import Settings
from onemin_relay.state.base import StateStore


async def open_state(settings: Settings) -> StateStore:
    raise NotImplementedError
