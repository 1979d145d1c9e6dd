"""OpenAI /v1 routes for chat. STUB: to be written."""

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
