"""Background removal of expired files. STUB."""

from onemin_relay.config import Settings
from onemin_relay.state.base import StateStore


async def run_retention(state: StateStore, settings: Settings) -> None:
    raise NotImplementedError
