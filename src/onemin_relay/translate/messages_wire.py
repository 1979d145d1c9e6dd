"""Anthropic's Messages request (`POST /v1/messages`, `/v1/messages/count_tokens`) as pydantic wire models.

Strict types (`"max_tokens": "10"` is a 400), unknown fields accepted and ignored (clients add their own:
`cache_control`, `container`, …). Union members carry `<…>` tags, which `errors.validation_failed` drops
from an error's location. What each field becomes is `translate/messages.py`'s business.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from onemin_relay.errors import invalid_request, validate
from onemin_relay.translate.chat_wire import text_or_list

# Stop sequences are matched against every piece of a streamed answer: bound how many one request sets.
MAX_STOP_SEQUENCES = 16


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)


def _kind(value: Any) -> str | None:
    """The `<type>` tag of a block or source, for pydantic's discriminated unions."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return f"<{kind}>" if isinstance(kind, str) else None


class TextBlock(_Wire):
    type: Literal["text"]
    text: str


class Base64Source(_Wire):
    type: Literal["base64"]
    media_type: str = Field(min_length=1, max_length=100)
    data: str = Field(min_length=1)


class URLSource(_Wire):
    type: Literal["url"]
    url: str = Field(min_length=1)


class FileSource(_Wire):
    """A file by id (Anthropic's Files API; here an id from the relay's `/v1/files`)."""

    type: Literal["file"]
    file_id: str = Field(min_length=1, max_length=256)


class PlainTextSource(_Wire):
    type: Literal["text"]
    media_type: Literal["text/plain"] = "text/plain"
    data: str


def _union_error(what: str, kinds: str) -> dict[str, str]:
    return {
        "custom_error_type": f"invalid_{what}",
        "custom_error_message": f"each {what.replace('_', ' ')} needs a type: {kinds}",
    }


ImageSource = Annotated[
    Annotated[Base64Source, Tag("<base64>")]
    | Annotated[URLSource, Tag("<url>")]
    | Annotated[FileSource, Tag("<file>")],
    Discriminator(_kind, **_union_error("image_source", "base64, url or file")),
]


class ImageBlock(_Wire):
    type: Literal["image"]
    source: ImageSource


class ContentSource(_Wire):
    type: Literal["content"]
    content: Annotated[
        Annotated[str, Tag("<text>")]
        | Annotated[
            list[
                Annotated[
                    Annotated[TextBlock, Tag("<text>")] | Annotated[ImageBlock, Tag("<image>")],
                    Discriminator(_kind, **_union_error("content_block", "text or image")),
                ]
            ],
            Tag("<list>"),
        ],
        Discriminator(text_or_list),
    ]


DocumentSource = Annotated[
    Annotated[Base64Source, Tag("<base64>")]
    | Annotated[PlainTextSource, Tag("<text>")]
    | Annotated[ContentSource, Tag("<content>")]
    | Annotated[URLSource, Tag("<url>")]
    | Annotated[FileSource, Tag("<file>")],
    Discriminator(_kind, **_union_error("document_source", "base64, text, content, url or file")),
]


class DocumentBlock(_Wire):
    type: Literal["document"]
    source: DocumentSource
    title: str | None = None
    context: str | None = None


class ToolUseBlock(_Wire):
    type: Literal["tool_use"]
    id: str = Field(min_length=1, max_length=256)
    name: str = Field(min_length=1, max_length=200)
    input: dict[str, Any]


ToolResultContent = Annotated[
    Annotated[str, Tag("<text>")]
    | Annotated[
        list[
            Annotated[
                Annotated[TextBlock, Tag("<text>")]
                | Annotated[ImageBlock, Tag("<image>")]
                | Annotated[DocumentBlock, Tag("<document>")],
                Discriminator(_kind, **_union_error("content_block", "text, image or document")),
            ]
        ],
        Tag("<list>"),
    ],
    Discriminator(text_or_list),
]


class ToolResultBlock(_Wire):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1, max_length=256)
    content: ToolResultContent | None = None
    is_error: bool | None = None


class ThinkingBlock(_Wire):
    """An earlier answer's reasoning, as clients send it back: 1min.ai shows none, so it is dropped."""

    type: Literal["thinking"]
    thinking: str


class RedactedThinkingBlock(_Wire):
    type: Literal["redacted_thinking"]
    data: str


ContentBlock = Annotated[
    Annotated[TextBlock, Tag("<text>")]
    | Annotated[ImageBlock, Tag("<image>")]
    | Annotated[DocumentBlock, Tag("<document>")]
    | Annotated[ToolUseBlock, Tag("<tool_use>")]
    | Annotated[ToolResultBlock, Tag("<tool_result>")]
    | Annotated[ThinkingBlock, Tag("<thinking>")]
    | Annotated[RedactedThinkingBlock, Tag("<redacted_thinking>")],
    Discriminator(
        _kind,
        **_union_error(
            "content_block", "text, image, document, tool_use, tool_result, thinking or redacted_thinking"
        ),
    ),
]


class InputMessage(_Wire):
    role: Literal["user", "assistant"]
    content: Annotated[
        Annotated[str, Tag("<text>")] | Annotated[list[ContentBlock], Tag("<list>")],
        Discriminator(
            text_or_list,
            custom_error_type="invalid_content",
            custom_error_message="content must be a string or an array of content blocks",
        ),
    ]


class ToolParam(_Wire):
    """A client tool (`type` absent or `custom`, with `input_schema`) or one of Anthropic's server tools."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9_-]{1,128}$")
    type: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    strict: bool | None = None


class ToolChoiceParam(_Wire):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = Field(None, min_length=1)
    disable_parallel_tool_use: bool | None = None


class JsonOutputFormat(_Wire):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(_Wire):
    format: JsonOutputFormat | None = None


class MessagesRequest(_Wire):
    """`POST /v1/messages` (and, without `max_tokens`, `POST /v1/messages/count_tokens`)."""

    model: str = Field(min_length=1, max_length=256)
    messages: list[InputMessage] = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    system: (
        Annotated[
            Annotated[str, Tag("<text>")] | Annotated[list[TextBlock], Tag("<list>")],
            Discriminator(text_or_list),
        ]
        | None
    ) = None
    stop_sequences: list[str] | None = None
    stream: bool | None = False
    tools: list[ToolParam] | None = None
    tool_choice: ToolChoiceParam | None = None
    output_config: OutputConfig | None = None
    # Accepted and ignored: 1min.ai has no such settings (docs/messages.md lists them).
    metadata: dict[str, Any] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    thinking: dict[str, Any] | None = None
    service_tier: str | None = None


class CountTokensRequest(MessagesRequest):
    max_tokens: int = Field(1, ge=1)  # count_tokens takes no `max_tokens`


def parse_messages_request(data: object, model: type[MessagesRequest] = MessagesRequest) -> MessagesRequest:
    """Validate a request body; the first problem becomes a 400 naming its param (`messages.0.content`)."""
    request = validate(model, data)
    if request.stop_sequences is not None and len(request.stop_sequences) > MAX_STOP_SEQUENCES:
        raise invalid_request(
            f"'stop_sequences' takes at most {MAX_STOP_SEQUENCES} sequences.", param="stop_sequences"
        )
    return request
