"""OpenAI /v1 routes for models. STUB: to be written."""

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
