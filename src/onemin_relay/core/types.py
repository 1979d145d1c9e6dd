"""The contract between the API dialects and the chat core.

A dialect (`api/<dialect>.py` + `translate/<dialect>.py`) maps its wire request to a `CoreRequest`, hands it
to the core engine, and renders what comes back: a `CoreResult` for a whole answer, or `CoreEvent`s for a
stream. The core owns everything 1min.ai-specific and shared: transcript folding into one prompt,
attachments, the tool-call and structured-output emulation (prompt section, lenient parsing, schema check,
repair round-trip), stop sequences and token limits, usage and credits, and upstream error mapping.

Errors: the core raises `errors.OpenAIError` (status, message, type, param, code) before a stream starts,
and yields a `StreamFailure` carrying one after. A dialect whose wire format has its own error shape
(Anthropic) maps that error by status; it never sees upstream internals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from onemin_relay.errors import OpenAIError
from onemin_relay.translate.chat_wire import Message

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]
SearchContextSize = Literal["low", "medium", "high"]


# --- request -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call. `parameters` is the JSON Schema of its arguments (an object schema);
    None means the tool takes no arguments."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] | None = None
    strict: bool = False


@dataclass(frozen=True)
class ToolChoice:
    """`none`: no tool is offered (earlier calls in the transcript still fold). `auto`: the model may call
    one. `required`: it must call at least one. `names`, when not empty, restricts the offer to those tools
    (a named function is `required` with one name; OpenAI's `allowed_tools` keeps its mode)."""

    mode: Literal["none", "auto", "required"] = "auto"
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutputFormat:
    """What the answer's text must be: free text, one JSON value (`json_object`), or JSON that validates
    against `schema` (`json_schema`; `strict` turns a still-invalid answer after repair into an error)."""

    kind: Literal["text", "json_object", "json_schema"] = "text"
    schema: Mapping[str, Any] | None = None
    name: str | None = None
    description: str | None = None
    strict: bool = False


@dataclass(frozen=True)
class CoreRequest:
    """One chat request, whatever dialect it came in.

    `messages` is the transcript in chat-completions wire form (`translate/chat_wire.Message`: roles
    system/developer/user/assistant/tool/function, text/image/file parts, assistant `tool_calls`, tool
    results by `tool_call_id`); every dialect maps its own turns onto these. `param_prefix` lets errors about
    the transcript name the dialect's own parameter (`messages`, `input`)."""

    model: str  # as the client named it; echoed back in answers
    messages: Sequence[Message]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    parallel_tool_calls: bool = True
    output: OutputFormat = field(default_factory=OutputFormat)
    stop: tuple[str, ...] = ()
    token_limit: int | None = None
    choices: int = 1
    web_search: SearchContextSize | None = None  # None: no web search
    param_prefix: str = "messages"


# --- result ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCallOut:
    """A call the model made: a fresh `call_…` id, the tool's name, its arguments as JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChoiceOut:
    """One answer. `text` is what the model wrote outside its tool calls (None when it wrote nothing but
    calls); for a JSON output format it is the bare JSON. `stop_sequence` names the stop sequence that cut
    the text, when one did."""

    text: str | None
    tool_calls: tuple[ToolCallOut, ...]
    finish_reason: FinishReason
    stop_sequence: str | None = None


@dataclass(frozen=True)
class CoreResult:
    """A whole answer: `record_id` is the (last) upstream record's id, for dialects that derive their
    answer id from it; `credits` adds up every upstream call made (repairs included)."""

    choices: tuple[ChoiceOut, ...]
    usage: Usage
    credits: int
    record_id: str | None = None


# --- stream events -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TextDelta:
    """The next piece of a choice's text. The first event of every choice is a TextDelta with empty
    text, sent as soon as upstream starts answering it (a dialect may open the choice then)."""

    choice: int
    text: str


@dataclass(frozen=True)
class ToolCallStart:
    """A tool call begins: `call` is its position among the choice's calls (0, 1, …)."""

    choice: int
    call: int
    id: str
    name: str


@dataclass(frozen=True)
class ToolCallDelta:
    """The next piece of a call's arguments (JSON text); the pieces joined are the call's arguments."""

    choice: int
    call: int
    arguments: str


@dataclass(frozen=True)
class ChoiceDone:
    choice: int
    finish_reason: FinishReason
    stop_sequence: str | None = None


@dataclass(frozen=True)
class StreamUsage:
    """After every choice is done: the usage of the whole request and the credits it cost."""

    usage: Usage
    credits: int


@dataclass(frozen=True)
class KeepAlive:
    """Upstream has been silent for the keep-alive interval: the dialect sends its own keep-alive."""


@dataclass(frozen=True)
class StreamFailure:
    """The stream broke after it started; nothing follows. The dialect ends its stream with this error."""

    error: OpenAIError


CoreEvent = TextDelta | ToolCallStart | ToolCallDelta | ChoiceDone | StreamUsage | KeepAlive | StreamFailure
