"""The chat core's stream events → the Responses API's streaming events, as a pure state machine.

The order is the one the SDKs check: `response.created`, `response.in_progress`, then per output item
`output_item.added` → (`content_part.added` → `output_text.delta`… → `output_text.done` →
`content_part.done` | `function_call_arguments.delta`… → `function_call_arguments.done`) →
`output_item.done`, and last `response.completed` / `response.incomplete` / `response.failed`. Every event
carries the next `sequence_number`. Only the first choice is rendered (a response has one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from onemin_relay.core.types import (
    ChoiceDone,
    CoreEvent,
    StreamFailure,
    StreamUsage,
    TextDelta,
    ToolCallDelta,
    ToolCallOut,
    ToolCallStart,
    Usage,
)
from onemin_relay.errors import OpenAIError
from onemin_relay.translate.responses import (
    Outcome,
    Status,
    call_item,
    message_item,
    new_id,
    outcome,
    response_object,
    text_part,
)

Event = dict[str, Any]


@dataclass
class _OpenItem:
    index: int  # output_index
    item_id: str
    call: ToolCallOut | None = None  # None: a message
    text: str = ""


@dataclass
class ResponseEvents:
    """Feed it core events in order; it returns the Responses events each one gives."""

    response_id: str
    created_at: int
    echo: Mapping[str, Any]
    output: list[dict[str, Any]] = field(default_factory=list)  # finished items
    final: dict[str, Any] | None = None  # the response as the last event showed it
    _sequence: int = 0
    _open: _OpenItem | None = None
    _outcome: Outcome = field(default_factory=lambda: Outcome("completed", None))
    _usage: Usage | None = None

    def start(self) -> list[Event]:
        response = self._response("in_progress")
        return [
            self._event("response.created", response=response),
            self._event("response.in_progress", response=response),
        ]

    def feed(self, event: CoreEvent) -> list[Event]:
        """The events for one core event (KeepAlive is the transport's business: none here)."""
        if isinstance(event, TextDelta | ToolCallStart | ToolCallDelta | ChoiceDone) and event.choice:
            return []
        if isinstance(event, TextDelta):
            return self._text(event.text) if event.text else []  # "" only says the choice started
        if isinstance(event, ToolCallStart):
            events = self._close()
            self._open = _OpenItem(len(self.output), new_id("fc"), ToolCallOut(event.id, event.name, ""))
            item = call_item(self._open.item_id, self._open.call, "in_progress")  # type: ignore[arg-type]
            return [
                *events,
                self._event("response.output_item.added", output_index=self._open.index, item=item),
            ]
        if isinstance(event, ToolCallDelta):
            return self._arguments(event.arguments)
        if isinstance(event, ChoiceDone):
            self._outcome = outcome(event.finish_reason)
            if self._open is None and not self.output:
                return [*self._text(""), *self._close()]  # an empty answer is still one (empty) message
            return self._close()
        if isinstance(event, StreamUsage):
            self._usage = event.usage
            return []
        if isinstance(event, StreamFailure):
            return self.fail(event.error)
        return []

    def finish(self) -> list[Event]:
        """After the core's events ended without a failure: `response.completed` or `.incomplete`."""
        events = self._close()
        status = self._outcome.status
        response = self._response(status, self._outcome.incomplete_reason)
        return [*events, self._event(f"response.{status}", response=response)]

    def fail(self, error: OpenAIError) -> list[Event]:
        """The stream broke: an `error` event, then `response.failed` with what was finished so far."""
        self._open = None
        return [
            self._event("error", code=error.code, message=error.message, param=error.param),
            self._event("response.failed", response=self._response("failed", error=error)),
        ]

    # --- items ---

    def _text(self, text: str) -> list[Event]:
        events: list[Event] = []
        if self._open is not None and self._open.call is not None:
            events += self._close()
        if self._open is None:
            self._open = _OpenItem(len(self.output), new_id("msg"))
            item = {**message_item(self._open.item_id, "", "in_progress"), "content": []}
            events += [
                self._event("response.output_item.added", output_index=self._open.index, item=item),
                self._event("response.content_part.added", **self._where(), part=text_part("")),
            ]
        if not text:
            return events
        self._open.text += text
        return [*events, self._event("response.output_text.delta", **self._where(), delta=text, logprobs=[])]

    def _arguments(self, arguments: str) -> list[Event]:
        if self._open is None or self._open.call is None:
            return []
        self._open.text += arguments
        return [
            self._event(
                "response.function_call_arguments.delta",
                item_id=self._open.item_id,
                output_index=self._open.index,
                delta=arguments,
            )
        ]

    def _close(self) -> list[Event]:
        """Finish the open item, if any."""
        current, self._open = self._open, None
        if current is None:
            return []
        if current.call is None:
            where = {"item_id": current.item_id, "output_index": current.index, "content_index": 0}
            status: Status = "incomplete" if self._outcome.status == "incomplete" else "completed"
            item = message_item(current.item_id, current.text, status)
            events = [
                self._event("response.output_text.done", **where, text=current.text, logprobs=[]),
                self._event("response.content_part.done", **where, part=text_part(current.text)),
            ]
        else:
            call = ToolCallOut(current.call.id, current.call.name, current.text)
            item = call_item(current.item_id, call, "completed")
            events = [
                self._event(
                    "response.function_call_arguments.done",
                    item_id=current.item_id,
                    output_index=current.index,
                    name=call.name,
                    arguments=call.arguments,
                )
            ]
        self.output.append(item)
        return [*events, self._event("response.output_item.done", output_index=current.index, item=item)]

    def _where(self) -> dict[str, Any]:
        assert self._open is not None
        return {"item_id": self._open.item_id, "output_index": self._open.index, "content_index": 0}

    # --- envelope ---

    def _response(
        self, status: Status, incomplete_reason: str | None = None, *, error: OpenAIError | None = None
    ) -> dict[str, Any]:
        done = status != "in_progress"
        self.final = response_object(
            self.response_id,
            self.created_at,
            self.echo,
            status=status,
            output=self.output if done else (),
            usage=self._usage if done else None,
            error=error,
            incomplete_reason=incomplete_reason,
        )
        return self.final

    def _event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event
