"""Unit tests of the chat translation: request validation, transcript folding, payloads, output limits."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
import tiktoken

from onemin_relay.core.types import ChoiceOut, Usage
from onemin_relay.errors import OpenAIError
from onemin_relay.translate import tokens
from onemin_relay.translate.chat import (
    answer_text,
    build_payload,
    build_prompt,
    finish_reason,
    media_parts,
    split_online,
)
from onemin_relay.translate.chat_completions import (
    chunk_object,
    completion_object,
    core_request,
    new_completion_id,
    usage_chunk,
)
from onemin_relay.translate.chat_wire import ChatCompletionRequest, parse_chat_request
from onemin_relay.translate.media import InvalidMedia, decode_base64, decode_data_url, extension_of
from onemin_relay.translate.output import OutputLimiter, limit_text
from onemin_relay.translate.tokens import (
    count_tokens,
    load_encoding,
    truncate_to_tokens,
    upstream_credits,
    upstream_token_counts,
)
from tests.openapi_schema import assert_matches_schema


def chat(messages: list[dict[str, Any]], **extra: Any) -> ChatCompletionRequest:
    return parse_chat_request({"model": "gpt-4o", "messages": messages, **extra})


HI = {"role": "user", "content": "x"}
ON = {"webSearch": True, "numOfSite": 3, "maxWord": 1000}


def bad(body: dict[str, Any]) -> OpenAIError:
    with pytest.raises(OpenAIError) as caught:
        parse_chat_request(body)
    assert caught.value.status == 400
    return caught.value


# --- request validation ----------------------------------------------------------------------------


def test_minimal_request_is_accepted_with_defaults() -> None:
    request = chat([{"role": "user", "content": "hi"}])
    assert request.choices == 1
    assert request.stop_sequences == ()
    assert request.token_limit is None
    assert request.include_usage is False


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [HI]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages.0.content.0",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            },
            "messages.0.content.0.image_url.url",
        ),
        ({"model": "m", "messages": [HI], "n": 0}, "n"),
        ({"model": "m", "messages": [HI], "n": 9}, "n"),
        ({"model": "m", "messages": [HI], "stop": 3}, "stop"),
        ({"model": "m", "messages": [HI], "stop": ["a"] * 5}, "stop"),
        ({"model": "m", "messages": [HI], "max_tokens": 0}, "max_tokens"),
        ({"model": "m", "messages": [HI], "temperature": 3}, "temperature"),
        (
            {"model": "m", "messages": [HI], "modalities": ["audio"]},
            "modalities",
        ),
    ],
)
def test_invalid_requests_name_the_param(body: dict[str, Any], param: str) -> None:
    assert bad(body).param == param


def test_tools_response_format_and_unknown_fields_are_accepted() -> None:
    request = chat(
        [HI],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        tool_choice="auto",
        response_format={"type": "json_object"},
        temperature=0.2,
        seed=7,
        some_vendor_extension={"a": 1},
    )
    assert request.tools is not None


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    request = chat([HI], max_tokens=50, max_completion_tokens=10)
    assert request.token_limit == 10
    assert chat([HI], max_tokens=50).token_limit == 50


def test_stop_as_string_or_list() -> None:
    assert chat([HI], stop="END").stop_sequences == ("END",)
    assert chat([HI], stop=["a", "b"]).stop_sequences == ("a", "b")


# --- transcript --------------------------------------------------------------------------------------


def test_a_lone_user_message_is_sent_as_is() -> None:
    text = "Line one\n\nLine two — «quoted» 你好"
    assert build_prompt(chat([{"role": "user", "content": text}]).messages) == text


def test_a_lone_user_message_in_parts_joins_its_text() -> None:
    messages = chat(
        [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    )
    assert build_prompt(messages.messages) == "a\nb"


def test_system_instructions_come_first_and_the_latest_user_turn_last() -> None:
    request = chat(
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "developer", "content": "Answer in French."},
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2+2?"},
        ]
    )
    assert build_prompt(request.messages) == (
        "System: Answer in French.\n\n"
        "System: Be brief.\n\n"
        "User: Hi\n\n"
        "Assistant: Hello!\n\n"
        "User: What is 2+2?"
    )


def test_tool_calls_tool_results_names_and_refusals_are_all_kept() -> None:
    request = chat(
        [
            {"role": "system", "content": [{"type": "text", "text": "Use tools."}]},
            {"role": "user", "content": "Weather in Paris?", "name": "alice"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}], "refusal": "not that"},
            {"role": "function", "name": "legacy", "content": "42"},
            {"role": "user", "content": "Thanks"},
        ]
    )
    assert build_prompt(request.messages) == (
        "System: Use tools.\n\n"
        "User (alice): Weather in Paris?\n\n"
        'Assistant: <tool_call>{"name": "weather", "arguments": {"city": "Paris"}}</tool_call>\n\n'
        "Tool result (weather): 18°C\n\n"
        "Assistant: (refused: no)\n(refused: not that)\n\n"
        "Function result (legacy): 42\n\n"
        "User: Thanks"
    )


def test_custom_tool_calls_from_an_earlier_turn_are_accepted_and_kept() -> None:
    # A conversation begun on OpenAI with a custom (free-form) tool, continued through the relay.
    request = chat(
        [
            {"role": "user", "content": "Run it"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_9", "type": "custom", "custom": {"name": "shell", "input": "ls -l"}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_9", "content": "a.txt"},
            {"role": "user", "content": "And now?"},
        ]
    )
    assert build_prompt(request.messages) == (
        "User: Run it\n\n"
        'Assistant: <tool_call>{"name": "shell", "arguments": "ls -l"}</tool_call>\n\n'
        "Tool result (shell): a.txt\n\n"
        "User: And now?"
    )


def test_a_malformed_tool_call_names_its_param() -> None:
    call = {"id": "c", "type": "custom", "custom": {"input": "x"}}
    body = {"model": "m", "messages": [{"role": "assistant", "tool_calls": [call]}]}
    assert bad(body).param == "messages.0.tool_calls.0.custom.name"


def test_images_and_files_leave_numbered_markers_in_the_transcript() -> None:
    request = chat(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                    {"type": "file", "file": {"file_id": "file-abc"}},
                ],
            },
            {"role": "assistant", "content": "Which part?"},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    {"type": "file", "file": {"file_data": "AAAA", "filename": "r.pdf"}},
                ],
            },
        ]
    )
    assert build_prompt(request.messages, {"file-abc": "notes.txt"}) == (
        "User: Compare\n[image 1]\n[file 1: notes.txt]\n\n"
        "Assistant: Which part?\n\n"
        "User: [image 2]\n[file 2: r.pdf]"
    )
    parts = media_parts(request.messages)
    assert [(p.kind, p.number, p.param) for p in parts] == [
        ("image", 1, "messages.0.content.1"),
        ("file", 1, "messages.0.content.2"),
        ("image", 2, "messages.2.content.0"),
        ("file", 2, "messages.2.content.1"),
    ]


def test_audio_input_is_refused_not_dropped() -> None:
    request = chat(
        [
            {
                "role": "user",
                "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}],
            }
        ]
    )
    with pytest.raises(OpenAIError) as caught:
        media_parts(request.messages)
    assert caught.value.status == 400
    assert caught.value.param == "messages.0.content.0"


# --- payload -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o:online", ("gpt-4o", True)),
        ("gpt-4o", ("gpt-4o", False)),
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", False),
        ),
        (":online", (":online", False)),
    ],
)
def test_online_suffix(model: str, expected: tuple[str, bool]) -> None:
    assert split_online(model) == expected


def test_web_search_options_ask_for_a_search_context() -> None:
    assert core_request(chat([HI])).web_search is None
    assert core_request(chat([HI], web_search_options={"search_context_size": "high"})).web_search == "high"
    assert core_request(chat([HI], web_search_options={})).web_search == "medium"


def test_payload_minimal_and_full() -> None:
    assert build_payload("gpt-4o", "hi") == {
        "type": "UNIFY_CHAT_WITH_AI",
        "model": "gpt-4o",
        "promptObject": {"prompt": "hi"},
    }
    full = build_payload(
        "gpt-4o",
        "hi",
        images=["images/a.png"],
        files=["uuid-1"],
        web_search=ON,
    )
    assert full["promptObject"] == {
        "prompt": "hi",
        "settings": {"webSearchSettings": ON},
        "attachments": {"images": ["images/a.png"], "files": ["uuid-1"]},
    }


# --- response side -----------------------------------------------------------------------------------


def test_answer_text_tolerates_every_shape() -> None:
    assert answer_text({"aiRecordDetail": {"resultObject": ["a", "b"]}}) == "a"
    assert answer_text({"aiRecordDetail": {"resultObject": "bare"}}) == "bare"
    assert answer_text({"aiRecordDetail": {"resultObject": []}}) == ""
    assert answer_text({}) == ""


def test_finish_reason_prefers_the_relays_own_cut() -> None:
    record = {"metadata": {"finishReason": "stop"}}
    assert finish_reason("length", record) == "length"
    # Cut at a stop sequence, the answer ended there, whatever upstream did after it.
    assert finish_reason("stop", {"metadata": {"finishReason": "length"}}) == "stop"
    assert finish_reason(None, {"metadata": {"finishReason": "length"}}) == "length"
    assert finish_reason(None, {"metadata": {"finishReason": "error"}}) == "stop"
    assert finish_reason(None, {"metadata": {"finishReason": "tool_calls"}}) == "stop"  # no tool calls sent


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [("MAX_TOKENS", "length"), ("max_tokens", "length"), ("SAFETY", "content_filter"), ("end_turn", "stop")],
)
def test_providers_finish_reasons_become_openai_ones(upstream: str, expected: str) -> None:
    assert finish_reason(None, {"metadata": {"finishReason": upstream}}) == expected
    assert finish_reason(None, None) == "stop"


def test_a_stop_sequence_cut_reports_stop_even_when_upstream_ran_out_of_length() -> None:
    text, cut = limit_text("first line\nthen more until upstream's own limit", stop=["\n"])
    assert (text, cut) == ("first line", "stop")
    assert finish_reason(cut, {"metadata": {"finishReason": "length"}}) == "stop"


def test_completion_ids_come_from_the_record_when_there_is_one() -> None:
    assert new_completion_id("12-34") == "chatcmpl-1234"
    assert new_completion_id().startswith("chatcmpl-")


def test_response_objects_match_the_openai_schema() -> None:
    usage = Usage(3, 4)
    body = completion_object(
        "chatcmpl-1", 1, "gpt-4o", (ChoiceOut("hi", (), "stop"), ChoiceOut("", (), "length")), usage
    )
    assert_matches_schema("CreateChatCompletionResponse", body)
    assert [c["index"] for c in body["choices"]] == [0, 1]
    chunk = chunk_object(
        "chatcmpl-1", 1, "gpt-4o", 0, {"role": "assistant", "content": ""}, include_usage=True
    )
    assert chunk["usage"] is None
    assert_matches_schema("CreateChatCompletionStreamResponse", chunk)
    assert_matches_schema(
        "CreateChatCompletionStreamResponse", chunk_object("chatcmpl-1", 1, "m", 0, {}, "stop")
    )
    final = usage_chunk("chatcmpl-1", 1, "gpt-4o", usage)
    assert final["choices"] == []
    assert_matches_schema("CreateChatCompletionStreamResponse", final)


# --- tokens and credits ------------------------------------------------------------------------------


def test_upstream_counts_are_used_only_when_present_and_non_zero() -> None:
    assert upstream_token_counts({"inputToken": 300, "outputToken": 18}) == (300, 18)
    assert upstream_token_counts({"inputToken": 0, "outputToken": 0, "totalToken": 0}) is None
    assert upstream_token_counts(None) is None
    assert upstream_token_counts({"inputToken": "many", "outputToken": True}) is None
    assert upstream_credits({"credit": 56}) == 56
    assert upstream_credits({"credit": None}) is None


async def test_the_encoding_is_loaded_once_off_the_event_loop_whoever_waits_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded_in: list[str] = []
    real_get_encoding = tiktoken.get_encoding

    def recording(name: str) -> tiktoken.Encoding:
        try:
            asyncio.get_running_loop()
            loaded_in.append("event loop")
        except RuntimeError:
            loaded_in.append("another thread")
        return real_get_encoding(name)

    monkeypatch.setattr(tiktoken, "get_encoding", recording)
    monkeypatch.setattr(tokens, "_loading", None)  # as in a fresh process
    impatient = asyncio.create_task(load_encoding())
    await asyncio.sleep(0)
    impatient.cancel()  # a waiter that goes away does not cancel the load the others wait for
    await asyncio.gather(load_encoding(), load_encoding())
    assert count_tokens("hello world") == 2
    assert loaded_in == ["another thread"]


def test_token_counting_works_offline_and_truncation_never_splits_a_character() -> None:
    assert count_tokens("hello world") == 2
    text = "你好世界" * 10
    cut, was_cut = truncate_to_tokens(text, 3)
    assert was_cut
    assert text.startswith(cut)
    assert count_tokens(cut) <= 3
    assert truncate_to_tokens("short", 10) == ("short", False)


# --- output limits -----------------------------------------------------------------------------------


def stream_through(limiter: OutputLimiter, pieces: list[str]) -> str:
    out = "".join(limiter.feed(piece) for piece in pieces)
    return out + limiter.finish()


def test_stop_sequence_split_across_pieces_is_found_and_not_emitted() -> None:
    limiter = OutputLimiter(stop=["STOP"])
    assert stream_through(limiter, ["Hello ST", "O", "P and more"]) == "Hello "
    assert limiter.cut == "stop"


def test_a_partial_stop_sequence_that_does_not_complete_is_released() -> None:
    limiter = OutputLimiter(stop=["STOP"])
    assert limiter.feed("Hello ST") == "Hello"  # " ST" could begin "STOP": held back
    assert limiter.feed("ART") == " ST"
    assert limiter.finish() == "ART"
    assert limiter.text == "Hello START"
    assert limiter.cut is None  # the answer ended by itself


def test_earliest_of_several_stop_sequences_wins() -> None:
    assert limit_text("one, two. three", stop=[".", ","]) == ("one", "stop")


def test_token_limit_truncates_with_finish_reason_length() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 5
    out, reason = limit_text(text, max_tokens=5)
    assert reason == "length"
    assert count_tokens(out) <= 5
    assert text.startswith(out)
    assert limit_text("short", max_tokens=50) == ("short", None)


def test_token_limit_in_a_stream_of_multibyte_pieces() -> None:
    limiter = OutputLimiter(max_tokens=4)
    pieces = ["«Bon", "jour» — ", "你好", "世界 🤖", " encore"]
    out = stream_through(limiter, pieces)
    assert limiter.cut == "length"
    assert "".join(pieces).startswith(out)
    assert 0 < count_tokens(out) <= 4


LONG_ANSWER = "".join(
    f"Paragraph {n}: the quick brown fox — «le renard» 你好世界 — jumps over {n * 7} lazy dogs.\n\n"
    for n in range(400)
)


def pieces_of(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("limit", [1, 17, 250, 3000])
def test_a_streamed_token_limit_cuts_where_the_whole_text_would_be_cut(limit: int) -> None:
    limiter = OutputLimiter(max_tokens=limit)
    out = stream_through(limiter, pieces_of(LONG_ANSWER, 7))
    assert out == truncate_to_tokens(LONG_ANSWER, limit)[0]
    assert limiter.cut == "length"


# JSON mode output: one long line, no spaces.
MINIFIED_JSON = json.dumps(
    [{"name": f"item{n}", "value": "abc" * 5, "ok": True} for n in range(800)], separators=(",", ":")
)


@pytest.mark.parametrize("answer", [LONG_ANSWER, MINIFIED_JSON], ids=["prose", "minified-json"])
def test_a_long_stream_under_a_token_limit_is_tokenised_in_linear_time(
    monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    # Re-tokenising everything emitted so far for every delta stalls the event loop on long answers.
    tokenised: list[int] = []
    real_encode = tiktoken.Encoding.encode

    def counting_encode(self: tiktoken.Encoding, text: str, **kwargs: Any) -> list[int]:
        tokenised.append(len(text))
        return real_encode(self, text, **kwargs)

    limiter = OutputLimiter(max_tokens=count_tokens(answer))
    monkeypatch.setattr(tiktoken.Encoding, "encode", counting_encode)
    assert stream_through(limiter, pieces_of(answer, 20)) == answer
    assert limiter.cut is None
    assert sum(tokenised) < 3 * len(answer)


FUZZ_ALPHABET = [*"abcXYZ  \n\n\r\t.,;:'\"!?-_()0123456789²你好。🤖é", "\u0301", "'s", " the", "Hello"]


def test_streamed_token_limits_hold_on_random_text() -> None:
    # The limiter counts only the text after a known word end; a wrong word end would miscount.
    rng = random.Random(20261127)
    for _ in range(300):
        text = "".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randint(1, 300)))
        limit = rng.randint(1, 60)
        cuts = sorted(rng.sample(range(1, len(text) + 1), k=min(len(text), rng.randint(0, 40))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        limiter = OutputLimiter(max_tokens=limit)
        out = stream_through(limiter, pieces)
        assert text.startswith(out)
        assert count_tokens(out) <= limit
        assert (out == text) == (count_tokens(text) <= limit)


def test_stop_before_the_token_limit_reports_stop() -> None:
    limiter = OutputLimiter(stop=["\n"], max_tokens=100)
    assert stream_through(limiter, ["first line\nsecond"]) == "first line"
    assert limiter.cut == "stop"


def test_nothing_is_emitted_after_the_limiter_is_done() -> None:
    limiter = OutputLimiter(stop=["x"])
    assert limiter.feed("abxcd") == "ab"
    assert limiter.feed("more") == ""
    assert limiter.finish() == ""


# --- inline media ------------------------------------------------------------------------------------


def test_data_urls_and_base64() -> None:
    decoded = decode_data_url("data:image/PNG;base64,aGVs\nbG8=")
    assert (decoded.mime_type, decoded.content) == ("image/png", b"hello")
    assert decode_base64("aGVsbG8") == b"hello"  # missing padding tolerated
    assert decode_base64("-_8=") == b"\xfb\xff"  # URL-safe alphabet
    for broken in ["data:image/png,notbase64", "data:;base64,@@@@", "not a data url"]:
        with pytest.raises(InvalidMedia):
            decode_data_url(broken)
    with pytest.raises(InvalidMedia):
        decode_base64("")


def test_extension_of() -> None:
    assert extension_of("Report.PDF") == "pdf"
    assert extension_of("dir/archive.tar.gz") == "gz"
    assert extension_of(".hidden") == ""
    assert extension_of("noext") == ""
