"""The OpenAI `POST /v1/responses` request, as pydantic wire models.

Permissive where clients differ (unknown fields are accepted and ignored; items sent back exactly as the
relay returned them, with ids, statuses, annotations and logprobs, validate), strict where a wrong value
would change the answer (roles, content and item types, tool types, formats, limits). Union members carry
`<…>` tags, which `errors.validation_failed` drops from an error's location.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from onemin_relay.errors import invalid_request, validate
from onemin_relay.translate.chat_wire import text_or_list

# OpenAI's bounds on `metadata` (Metadata in its specification).
_METADATA_PAIRS, _METADATA_KEY, _METADATA_VALUE = 16, 64, 512
MIN_OUTPUT_TOKENS = 16  # OpenAI refuses a smaller max_output_tokens
MAX_ID_LENGTH = 64


class _Wire(BaseModel):
    # Strict like OpenAI: `"10"` is no integer and `"true"` no boolean (integers still fill number fields).
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)


def _kind(default: str | None) -> Any:
    """The discriminator of a union tagged by its `type` field (`default` when the field is absent)."""

    def tag(value: Any) -> str | None:
        kind = value.get("type", default) if isinstance(value, dict) else getattr(value, "type", default)
        return f"<{kind}>" if isinstance(kind, str) else None

    return tag


# --- content parts ----------------------------------------------------------------------------


class InputText(_Wire):
    type: Literal["input_text"]
    text: str


class InputImage(_Wire):
    type: Literal["input_image"]
    image_url: str | None = Field(None, min_length=1)
    file_id: str | None = Field(None, min_length=1, max_length=MAX_ID_LENGTH)
    detail: Literal["auto", "low", "high", "original"] | None = None


class InputFile(_Wire):
    type: Literal["input_file"]
    file_id: str | None = Field(None, min_length=1, max_length=MAX_ID_LENGTH)
    file_data: str | None = Field(None, min_length=1)
    filename: str | None = Field(None, min_length=1, max_length=255)
    file_url: str | None = None


class OutputText(_Wire):
    """An earlier answer's text, sent back as input (what the SDKs do with a previous output)."""

    type: Literal["output_text"]
    text: str


class Refusal(_Wire):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[
    Annotated[InputText, Tag("<input_text>")]
    | Annotated[InputImage, Tag("<input_image>")]
    | Annotated[InputFile, Tag("<input_file>")]
    | Annotated[OutputText, Tag("<output_text>")]
    | Annotated[Refusal, Tag("<refusal>")],
    Discriminator(
        _kind(None),
        custom_error_type="invalid_content_part",
        custom_error_message=(
            "each content part needs a type: input_text, input_image, input_file, output_text or refusal"
        ),
    ),
]


Content = Annotated[
    Annotated[str, Tag("<text>")] | Annotated[list[ContentPart], Tag("<list>")],
    Discriminator(
        text_or_list,
        custom_error_type="invalid_content",
        custom_error_message="content must be a string or an array of content parts",
    ),
]


# --- input items ------------------------------------------------------------------------------


class MessageItem(_Wire):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: Content
    id: str | None = None
    status: str | None = None


class FunctionCallItem(_Wire):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    name: str = Field(min_length=1, max_length=128)
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(_Wire):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    output: Content
    id: str | None = None
    status: str | None = None


class ReasoningItem(_Wire):
    """A reasoning item from another provider's answer: accepted and left out (1min.ai has none to
    continue from)."""

    type: Literal["reasoning"]


class ItemReference(_Wire):
    type: Literal["item_reference"]
    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)


ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning", "item_reference")

InputItem = Annotated[
    Annotated[MessageItem, Tag("<message>")]
    | Annotated[FunctionCallItem, Tag("<function_call>")]
    | Annotated[FunctionCallOutputItem, Tag("<function_call_output>")]
    | Annotated[ReasoningItem, Tag("<reasoning>")]
    | Annotated[ItemReference, Tag("<item_reference>")],
    Discriminator(
        _kind("message"),
        custom_error_type="unsupported_item",
        custom_error_message=(
            "input items through 1min.ai are messages, function_call, function_call_output, reasoning "
            "(ignored) and item_reference; built-in tool calls of other kinds cannot be continued"
        ),
    ),
]

Input = Annotated[
    Annotated[str, Tag("<text>")] | Annotated[list[InputItem], Tag("<list>")],
    Discriminator(
        text_or_list,
        custom_error_type="invalid_input",
        custom_error_message="input must be a string or an array of input items",
    ),
]


# --- tools, tool choice, text format -----------------------------------------------------------


class FunctionTool(_Wire):
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")  # as chat's
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


WEB_SEARCH_TOOLS = (
    "web_search",
    "web_search_2025_08_26",
    "web_search_preview",
    "web_search_preview_2025_03_11",
)


class WebSearchTool(_Wire):
    type: Literal[
        "web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"
    ]
    search_context_size: Literal["low", "medium", "high"] | None = None


class OtherTool(_Wire):
    """A built-in tool 1min.ai has no equivalent for; refused by name after validation."""

    type: str


def _tool_kind(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(kind, str):
        return None
    if kind == "function":
        return "<function>"
    return "<web_search>" if kind in WEB_SEARCH_TOOLS else "<other>"


Tool = Annotated[
    Annotated[FunctionTool, Tag("<function>")]
    | Annotated[WebSearchTool, Tag("<web_search>")]
    | Annotated[OtherTool, Tag("<other>")],
    Discriminator(
        _tool_kind,
        custom_error_type="invalid_tool",
        custom_error_message="each tool needs a type",
    ),
]


class NamedFunction(_Wire):
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=128)


class AllowedTools(_Wire):
    type: Literal["allowed_tools"]
    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]]


class HostedToolChoice(_Wire):
    """`{"type": "web_search_preview"}` and the like: use that built-in tool."""

    type: str


def _choice_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "<mode>"
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind in ("function", "allowed_tools"):
        return f"<{kind}>"
    return "<hosted>" if isinstance(kind, str) else None


ToolChoiceParam = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("<mode>")]
    | Annotated[NamedFunction, Tag("<function>")]
    | Annotated[AllowedTools, Tag("<allowed_tools>")]
    | Annotated[HostedToolChoice, Tag("<hosted>")],
    Discriminator(
        _choice_kind,
        custom_error_type="invalid_tool_choice",
        custom_error_message="tool_choice must be none, auto, required or a tool choice object",
    ),
]


class TextFormat(_Wire):
    type: Literal["text"]


class JsonObjectFormat(_Wire):
    type: Literal["json_object"]


class JsonSchemaFormat(_Wire):
    type: Literal["json_schema"]
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


Format = Annotated[
    Annotated[TextFormat, Tag("<text>")]
    | Annotated[JsonObjectFormat, Tag("<json_object>")]
    | Annotated[JsonSchemaFormat, Tag("<json_schema>")],
    Discriminator(
        _kind(None),
        custom_error_type="invalid_format",
        custom_error_message="text.format.type must be text, json_object or json_schema",
    ),
]


class TextParam(_Wire):
    format: Format | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


# --- the request --------------------------------------------------------------------------------


class CreateResponseRequest(_Wire):
    model: str = Field(min_length=1, max_length=256)
    input: Input | None = None
    instructions: str | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoiceParam | None = None
    parallel_tool_calls: bool | None = None
    text: TextParam | None = None
    max_output_tokens: int | None = Field(None, ge=MIN_OUTPUT_TOKENS)
    metadata: dict[str, str] | None = None
    store: bool | None = None
    previous_response_id: str | None = Field(None, min_length=1)
    include: list[str] | None = None
    stream: bool | None = None
    # Accepted and echoed or ignored: 1min.ai has no such settings (docs/responses.md lists them).
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_logprobs: int | None = Field(None, ge=0, le=20)
    max_tool_calls: int | None = Field(None, ge=1)
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    truncation: Literal["auto", "disabled"] | None = None
    reasoning: dict[str, Any] | None = None
    stream_options: dict[str, Any] | None = None
    # Refused when set (below): nothing in the relay can honour them.
    background: bool | None = None
    conversation: Any = None
    prompt: Any = None

    @property
    def items(self) -> list[InputItem]:
        """`input` as items: a string is one user message."""
        if self.input is None:
            return []
        if isinstance(self.input, str):
            return [MessageItem(role="user", content=self.input)]
        return list(self.input)


def parse_response_request(data: object) -> CreateResponseRequest:
    """Validate a request body; the first problem becomes a 400 naming its param (`input.2.content`)."""
    request = validate(CreateResponseRequest, data)
    if request.background:
        raise invalid_request(
            "Background responses are not supported by the relay; send the request without 'background'.",
            param="background",
            code="unsupported_parameter",
        )
    if request.conversation is not None:
        raise invalid_request(
            "Conversations are not supported by the relay; continue with 'previous_response_id'.",
            param="conversation",
            code="unsupported_parameter",
        )
    if request.prompt is not None:
        raise invalid_request(
            "Stored prompt templates are not supported by the relay; send 'input' and 'instructions'.",
            param="prompt",
            code="unsupported_parameter",
        )
    if request.previous_response_id is not None and len(request.previous_response_id) > MAX_ID_LENGTH:
        raise invalid_request(
            "Invalid 'previous_response_id': not a response id.",
            param="previous_response_id",
            code="invalid_value",
        )
    _check_metadata(request.metadata)
    for index, tool in enumerate(request.tools or ()):
        if isinstance(tool, OtherTool):
            raise invalid_request(
                f"The built-in tool '{tool.type[:64]}' is not available through 1min.ai; function tools and "
                "web_search are.",
                param=f"tools.{index}.type",
                code="unsupported_tool",
            )
    return request


def _check_metadata(metadata: dict[str, str] | None) -> None:
    if metadata is None:
        return
    if len(metadata) > _METADATA_PAIRS:
        raise invalid_request(
            f"Invalid 'metadata': at most {_METADATA_PAIRS} pairs.", param="metadata", code="invalid_value"
        )
    for key, value in metadata.items():
        if len(key) > _METADATA_KEY or len(value) > _METADATA_VALUE:
            raise invalid_request(
                f"Invalid 'metadata': keys are at most {_METADATA_KEY} characters and values at most "
                f"{_METADATA_VALUE}.",
                param="metadata",
                code="invalid_value",
            )
