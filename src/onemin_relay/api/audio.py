"""OpenAI /v1 routes for audio. STUB: to be written."""

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
