"""OpenAI /v1 routes for files. STUB: to be written."""

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
