"""The 1min.ai model catalogue, cached. STUB."""

from __future__ import annotations

from onemin_relay.config import Settings
from onemin_relay.upstream.client import OneMinClient


class ModelCatalogue:
    def __init__(self, client: OneMinClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
