"""OpenAI /v1 routes for images. STUB: to be written."""

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
