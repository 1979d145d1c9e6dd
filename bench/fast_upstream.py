"""A deliberately cheap stand-in for 1min.ai, for measuring the relay's own cost (not the simulator's).

Raw ASGI, no framework, every answer built once at start: `GET /models?feature=…` answers that feature's
list from the catalogue snapshot the relay ships (as 1min.ai answers per feature); any other GET and every
POST answer one fixed, successful `aiRecord` — or, with `isStreaming=true`, `--chunks` SSE `content` events
(`--chunk-delay-ms` apart) then `result` and `done`.
Usage: `.venv/bin/python bench/fast_upstream.py --port 18080 [--chunks 20] [--chunk-delay-ms 0]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from importlib import resources
from typing import Any

import uvicorn

ANSWER = "A fixed answer from the fast upstream, long enough to look like a sentence or two. "
_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream")]


def _catalogue() -> dict[bytes, bytes]:
    """`feature=…` query → its answer."""
    snapshot = json.loads(resources.files("onemin_relay.data").joinpath("catalogue.json").read_text())
    return {
        f"feature={feature}".encode(): json.dumps({"models": models, "total": len(models)}).encode()
        for feature, models in snapshot.items()
    }


def _record(text: str) -> dict[str, Any]:
    usage = {"credit": 50, "inputToken": 20, "outputToken": 20, "totalToken": 40, "finishReason": "stop"}
    return {
        "uuid": "00000000-0000-4000-8000-0000000000aa",
        "model": "gpt-4o-mini",
        "type": "UNIFY_CHAT_WITH_AI",
        "status": "SUCCESS",
        "conversationId": None,
        "createdAt": "2026-01-01T00:00:00.000Z",
        "metadata": usage,
        "aiRecordDetail": {"promptObject": {"prompt": "-"}, "resultObject": [text]},
        "modelDetail": {"name": "gpt-4o-mini", "provider": "OPENAI"},
    }


class FastUpstream:
    def __init__(self, chunks: int, chunk_delay: float) -> None:
        self.chunk_delay = chunk_delay
        self.catalogue = _catalogue()
        self.answer = json.dumps({"aiRecord": _record(ANSWER)}).encode()
        piece = ANSWER[: max(1, len(ANSWER) // chunks)]
        self.event = b"event: content\ndata: " + json.dumps({"content": piece}).encode() + b"\n\n"
        self.chunks = chunks
        self.stream_end = (
            b"event: result\ndata: "
            + json.dumps({"aiRecord": _record(piece * chunks)}).encode()
            + b'\n\nevent: done\ndata: {"message":"Stream completed"}\n\n'
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):  # the request body is not looked at
            pass
        if scope["path"] == "/models":
            await self._whole(send, self.catalogue.get(scope["query_string"], b'{"models":[],"total":0}'))
        elif b"isStreaming=true" in scope["query_string"]:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE})
            for _ in range(self.chunks):
                await send({"type": "http.response.body", "body": self.event, "more_body": True})
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
            await send({"type": "http.response.body", "body": self.stream_end})
        else:
            await self._whole(send, self.answer)

    @staticmethod
    async def _whole(send: Any, body: bytes) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": _JSON})
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--chunk-delay-ms", type=float, default=0)
    args = parser.parse_args()
    app = FastUpstream(args.chunks, args.chunk_delay_ms / 1000)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
