"""The OpenAI `POST /v1/chat/completions` request, as pydantic wire models.

Permissive where OpenAI clients differ (unknown top-level fields are accepted and ignored), strict where a
wrong value would change the answer (roles, content part shapes, `n`, `stop`, token limits) and on JSON types,
as OpenAI is (`"max_tokens": "10"` is a 400 `invalid_type`).
Union members carry `<…>` tags, which `errors.validation_failed` drops from an error's location.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from onemin_relay.errors import invalid_request, validate

# Each choice is one upstream call (and its credits): bound what one request can fan out to.
MAX_CHOICES = 8
MAX_TOOLS = 128  # as OpenAI


class _Wire(BaseModel):
    # Strict like OpenAI: `"10"` is no integer and `"true"` no boolean (integers still fill number fields).
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)


class TextPart(_Wire):
    type: Literal["text"]
    text: str


class RefusalPart(_Wire):
    type: Literal["refusal"]
    refusal: str


class ImageURL(_Wire):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Wire):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(_Wire):
    data: str
    format: str


class AudioPart(_Wire):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FileRef(_Wire):
    file_id: str | None = Field(None, min_length=1, max_length=256)
    file_data: str | None = Field(None, min_length=1)
    filename: str | None = Field(None, min_length=1, max_length=255)


class FilePart(_Wire):
    type: Literal["file"]
    file: FileRef


def _type_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return f"<{kind}>" if isinstance(kind, str) else None


ContentPart = Annotated[
    Annotated[TextPart, Tag("<text>")]
    | Annotated[RefusalPart, Tag("<refusal>")]
    | Annotated[ImagePart, Tag("<image_url>")]
    | Annotated[AudioPart, Tag("<input_audio>")]
    | Annotated[FilePart, Tag("<file>")],
    Discriminator(
        _type_tag,
        custom_error_type="invalid_content_part",
        custom_error_message="each content part needs a type: text, image_url, input_audio, file or refusal",
    ),
]


def text_or_list(value: Any) -> str | None:
    """The tag of a field that takes a string or an array (`content`, `stop`)."""
    if isinstance(value, str):
        return "<text>"
    if isinstance(value, list | tuple):
        return "<list>"
    return None


# Limits of the relay's own (docs/chat.md), so one request cannot hold the event loop while it is validated.
MAX_MESSAGES = 2048
MAX_CONTENT_PARTS = 1024  # per message

Content = Annotated[
    Annotated[str, Tag("<text>")]
    | Annotated[list[ContentPart], Field(max_length=MAX_CONTENT_PARTS), Tag("<list>")],
    Discriminator(
        text_or_list,
        custom_error_type="invalid_content",
        custom_error_message="content must be a string or an array of content parts",
    ),
]


class FunctionCall(_Wire):
    name: str
    arguments: str = ""


class ToolCall(_Wire):
    id: str = ""
    type: str = "function"
    function: FunctionCall


class CustomCall(_Wire):
    name: str
    input: str = ""


class CustomToolCall(_Wire):
    """A call to a custom (free-form input) tool, as a model on OpenAI may have made it earlier."""

    id: str = ""
    type: Literal["custom"]
    custom: CustomCall


def _call_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "<custom>" if kind == "custom" else "<function>"


AnyToolCall = Annotated[
    Annotated[ToolCall, Tag("<function>")] | Annotated[CustomToolCall, Tag("<custom>")],
    Discriminator(_call_kind),
]


class Message(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Content | None = None
    name: str | None = None
    tool_calls: list[AnyToolCall] | None = None
    tool_call_id: str | None = None
    function_call: FunctionCall | None = None
    refusal: str | None = None


class FunctionDefinition(_Wire):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(_Wire):
    type: Literal["function"]
    function: FunctionDefinition


class CustomToolDefinition(_Wire):
    name: str
    description: str | None = None
    format: dict[str, Any] | None = None


class CustomTool(_Wire):
    type: Literal["custom"]
    custom: CustomToolDefinition


Tool = Annotated[
    Annotated[FunctionTool, Tag("<function>")] | Annotated[CustomTool, Tag("<custom>")],
    Discriminator(
        _type_tag,
        custom_error_type="invalid_tool",
        custom_error_message="each tool needs a type: function (or custom)",
    ),
]


class NamedFunction(_Wire):
    name: str


class NamedToolChoice(_Wire):
    type: Literal["function"]
    function: NamedFunction


class CustomToolChoice(_Wire):
    type: Literal["custom"]
    custom: NamedFunction


class AllowedTools(_Wire):
    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]] = Field(min_length=1)


class AllowedToolsChoice(_Wire):
    type: Literal["allowed_tools"]
    allowed_tools: AllowedTools


def _choice_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "<mode>"
    return _type_tag(value)


ToolChoiceWire = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("<mode>")]
    | Annotated[NamedToolChoice, Tag("<function>")]
    | Annotated[CustomToolChoice, Tag("<custom>")]
    | Annotated[AllowedToolsChoice, Tag("<allowed_tools>")],
    Discriminator(
        _choice_kind,
        custom_error_type="invalid_tool_choice",
        custom_error_message="tool_choice must be none, auto, required, a named function or allowed_tools",
    ),
]


def _function_call_kind(value: Any) -> str | None:
    return "<mode>" if isinstance(value, str) else "<named>" if isinstance(value, dict) else None


FunctionCallWire = Annotated[
    Annotated[Literal["none", "auto"], Tag("<mode>")] | Annotated[NamedFunction, Tag("<named>")],
    Discriminator(
        _function_call_kind,
        custom_error_type="invalid_function_call",
        custom_error_message='function_call must be none, auto or {"name": …}',
    ),
]


class JsonSchemaFormat(_Wire):
    name: str = Field("response", min_length=1, max_length=128)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(_Wire):
    include_usage: bool | None = None


class WebSearchOptions(_Wire):
    search_context_size: Literal["low", "medium", "high"] | None = None


Stop = Annotated[
    Annotated[str, Tag("<text>")]
    | Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=4), Tag("<list>")],
    Discriminator(
        text_or_list,
        custom_error_type="invalid_stop",
        custom_error_message="stop must be a string or an array of up to 4 strings",
    ),
]


class ChatCompletionRequest(_Wire):
    model: str = Field(min_length=1, max_length=256)
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, ge=1, le=MAX_CHOICES)
    stop: Stop | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    web_search_options: WebSearchOptions | None = None
    # Accepted and ignored: 1min.ai has no such settings (docs/chat.md lists them).
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    seed: int | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    user: str | None = None
    # Emulated in the prompt (docs/tools.md).
    tools: list[Tool] | None = Field(None, max_length=MAX_TOOLS)
    tool_choice: ToolChoiceWire | None = None
    parallel_tool_calls: bool | None = None
    functions: list[FunctionDefinition] | None = Field(None, max_length=MAX_TOOLS)
    function_call: FunctionCallWire | None = None
    response_format: ResponseFormat | None = None
    modalities: list[str] | None = None

    @property
    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        stops = [self.stop] if isinstance(self.stop, str) else self.stop
        return tuple(stop for stop in stops if stop)

    @property
    def token_limit(self) -> int | None:
        """`max_completion_tokens` (the current name) wins over the deprecated `max_tokens`."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def choices(self) -> int:
        return self.n or 1

    @property
    def uses_legacy_functions(self) -> bool:
        """The deprecated `functions` instead of `tools`: answers carry `function_call`."""
        return bool(self.functions) and not self.tools

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def parse_chat_request(data: object) -> ChatCompletionRequest:
    """Validate a request body; the first problem becomes a 400 naming its param (e.g. `messages.0.role`)."""
    request = validate(ChatCompletionRequest, data)
    if request.modalities and "audio" in request.modalities:
        raise invalid_request(
            "Audio output is not available through 1min.ai chat; ask for text only.", param="modalities"
        )
    return request
