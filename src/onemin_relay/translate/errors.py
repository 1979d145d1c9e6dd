"""Upstream failures → OpenAI errors. STUB."""

from onemin_relay.errors import OpenAIError
from onemin_relay.upstream.errors import UpstreamError


def openai_error_from_upstream(error: UpstreamError) -> OpenAIError:
    raise NotImplementedError
