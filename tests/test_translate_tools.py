"""The tool-call emulation's pure parts: the lenient call scanner (many adversarial model outputs, whole
and streamed in every chunking), the prompt section and its size bound, and the per-choice verdicts."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from onemin_relay.config import Settings
from onemin_relay.core.answer import AnswerJudge, upstream_prompt
from onemin_relay.core.types import (
    ChoiceDone,
    CoreRequest,
    OutputFormat,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    ToolChoice,
    ToolSpec,
)
from onemin_relay.errors import OpenAIError
from onemin_relay.translate.chat_wire import Message
from onemin_relay.translate.tokens import count_tokens
from onemin_relay.translate.tool_scan import CallScanner
from onemin_relay.translate.tools import tool_line, tools_section
from tests.open_webui import tool_specs

WEATHER = ToolSpec(
    "get_weather",
    "Current weather in a city.",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"],
    },
)
TIME = ToolSpec("get_time", "The time now.", None)
SETTINGS = Settings()
HI = [Message(role="user", content="Hi")]


def scan(text: str, step: int | None = None) -> tuple[str, list[tuple[str | None, Any, str | None]]]:
    scanner = CallScanner()
    pieces = [text] if step is None else [text[i : i + step] for i in range(0, len(text), step)]
    prose = "".join(scanner.feed(piece) for piece in pieces) + scanner.finish()
    return prose, [(c.name, c.arguments, c.problem) for c in scanner.calls]


def tag(name: str, **arguments: Any) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


CALLS = [
    # (model output, prose left, calls found as (name, arguments))
    (tag("get_weather", city="Paris"), "", [("get_weather", {"city": "Paris"})]),
    ("Sure.\n" + tag("a") + "\n" + tag("b", x=1), "Sure.\n\n", [("a", {}), ("b", {"x": 1})]),
    ('<TOOL_CALL> {"name": "a", "arguments": {}} </Tool_Call>', "", [("a", {})]),
    ('<tool_call>{"name": "a", "arguments": "{\\"x\\": 1}"}', "", [("a", {"x": 1})]),  # unclosed at the end
    ('<tool_call>\n```json\n{"name": "a"}\n```\n</tool_call>', "", [("a", {})]),
    ('<tool_call>{"name": "a"}\n{"name": "b", "arguments": {}}</tool_call>', "", [("a", {}), ("b", {})]),
    ('```json\n{"name": "a", "arguments": {"x": [1, {"y": "}"}]}}\n```', "", [("a", {"x": [1, {"y": "}"}]})]),
    (
        '```\n[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {}}]\n```',
        "",
        [("a", {}), ("b", {})],
    ),
    ('I will call {"name": "a", "arguments": {"q": "x"}} now', "I will call  now", [("a", {"q": "x"})]),
    ('{"tool_calls": [{"function": {"name": "a", "arguments": "{}"}}]}', "", [("a", {})]),
    ('{"tool_calls": [{"type": "function", "function": {"name": "a", "arguments": {}}}]}', "", [("a", {})]),
    ('{"function": "a", "arguments": {"k": 1}}', "", [("a", {"k": 1})]),
    ('{"name": "a", "parameters": {"k": 1}}', "", [("a", {"k": 1})]),
    ('[{"name": "a", "args": {}}]', "", [("a", {})]),
]


@pytest.mark.parametrize(("text", "prose", "calls"), CALLS)
def test_every_accepted_shape_is_a_call(text: str, prose: str, calls: list[tuple[str, Any]]) -> None:
    got_prose, got_calls = scan(text)
    assert got_prose == prose
    assert [(name, arguments) for name, arguments, _ in got_calls] == calls
    assert all(problem is None for _, _, problem in got_calls)


PROSE = [
    "Plain text with no call at all.",
    'A JSON object that is data: {"name": "Bob", "age": 3}.',
    "Lists [1, 2, 3], links [here](https://x.y), maths {x | x > 0}, html <b>bold</b> <tool>",
    'Code:\n```python\ndef f():\n    return {"name": "a", "arguments": {}}\n```\nDone.',
    "Inline `code` and ``double`` ticks and a lone ` tick",
    "An unclosed { brace and [ bracket at the end {",
    '{"just": "json"} [{"a": 1}]',
    "<tool_cal> is not the tag, <tool_callx> neither",
    "emoji 🤖 « » 你好 {not json}",
]


@pytest.mark.parametrize("text", PROSE)
def test_prose_stays_prose(text: str) -> None:
    assert scan(text) == (text, [])


MALFORMED = [
    ('<tool_call>{"name": "a", "arguments": {x: 1}}</tool_call>', "not valid JSON"),
    ("<tool_call>just words</tool_call>", "not valid JSON"),
    ('<tool_call>{"arguments": {}}</tool_call>', "must be a JSON object"),
    ('{"name": "a", "arguments": {"x": 1}', "cut off"),
    ('{"name": "a", "arguments": {x}}', "not valid JSON"),
    ('<tool_call>{"name": "a", "arguments": "{bad"}</tool_call>', "arguments are not valid JSON"),
    ('<tool_call>{"name": "a", "arguments": [1]}</tool_call>', "must be a JSON object"),
]


@pytest.mark.parametrize(("text", "problem"), MALFORMED)
def test_malformed_calls_are_reported_not_shown(text: str, problem: str) -> None:
    prose, calls = scan(text)
    assert prose == ""
    assert len(calls) == 1
    assert problem in (calls[0][2] or "")


@pytest.mark.parametrize("text", [t for t, _, _ in CALLS] + PROSE + [t for t, _ in MALFORMED])
def test_a_stream_in_any_chunking_finds_what_the_whole_text_gives(text: str) -> None:
    whole = scan(text)
    for step in (1, 2, 3, 5, 8, 13):
        assert scan(text, step) == whole
    rng = random.Random(text)
    scanner = CallScanner()
    prose, position = "", 0
    while position < len(text):
        size = rng.randint(1, 9)
        prose += scanner.feed(text[position : position + size])
        position += size
    prose += scanner.finish()
    assert (prose, [(c.name, c.arguments, c.problem) for c in scanner.calls]) == whole


def test_hostile_answers_scan_through() -> None:
    # unclosed openings everywhere: each is settled once, the scan ends (linear, not quadratic)
    for text in (
        "{" * 50_000,
        '{"' * 30_000,
        "<tool_call>" + "{" * 30_000,
        "```\n" + "[{" * 20_000,
        "[" * 50_000,
    ):
        prose, calls = scan(text, 7)
        assert len(prose) + sum(1 for _ in calls) > 0


# --- the prompt section --------------------------------------------------------------------------


def test_tool_lines_are_compact_and_deterministic() -> None:
    assert tool_line(WEATHER) == '- get_weather(city: string, unit?: "c" | "f"): Current weather in a city.'
    assert tool_line(TIME) == "- get_time(): The time now."
    nested = ToolSpec(
        "search",
        "Search.",
        {
            "type": "object",
            "properties": {
                "filters": {"type": "object", "properties": {"year": {"type": "integer"}}},
                "tags": {"type": "array", "items": {"type": "string"}},
                "limit": {"type": "integer", "minimum": 1, "description": "How many."},
            },
        },
    )
    assert tool_line(nested) == (
        '- search(filters?: {year?: integer}, tags?: string[], limit?: {"type":"integer","minimum":1} '
        "(How many.)): Search."
    )
    refs = ToolSpec("r", "", {"$defs": {"x": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/x"}}})
    assert tool_line(refs).startswith('- r(arguments: {"$defs"')


def test_a_huge_description_is_cut_to_what_is_shown() -> None:
    tool = ToolSpec("big", "First sentence. " + "word " * 2_000_000, None)
    line = tool_line(tool, 0)
    assert line.startswith("- big(): First sentence. word word")
    assert line.endswith("…")
    assert len(line.removeprefix("- big(): ")) == 300
    assert tool_line(tool, 1) == "- big(): First sentence."


def test_nullable_and_object_parameters_are_written_tersely() -> None:
    # The shapes pydantic gives Optional[int], list[dict] and list[SomeModel] (Open WebUI's tools).
    tool = ToolSpec(
        "t",
        "",
        {
            "type": "object",
            "properties": {
                "count": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
                "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "ops": {
                    "anyOf": [{"type": "array", "items": {"type": "object", "additionalProperties": True}}]
                },
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"id": {"anyOf": [{"type": "string"}, {"type": "null"}]}, "text": {}},
                        "required": ["text"],
                    },
                },
            },
            "required": ["items"],
        },
    )
    assert tool_line(tool) == (
        "- t(count?: integer, either?: integer | string, ops?: object[], items: {id?: string, text: any}[])"
    )
    required_nullable = ToolSpec(
        "n",
        "",
        {
            "type": "object",
            "properties": {"x": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
            "required": ["x"],
        },
    )
    assert tool_line(required_nullable) == "- n(x: integer | null)"  # null must be sent explicitly: said


def test_the_section_names_the_format_and_the_choice() -> None:
    section = tools_section([WEATHER, TIME], ToolChoice("auto"), parallel=True, max_chars=4000)
    assert '<tool_call>{"name": "<tool name>", "arguments": {<arguments as JSON>}}</tool_call>' in section
    assert "one such line per call" in section
    single = tools_section(
        [WEATHER], ToolChoice("required", ("get_weather",)), parallel=False, max_chars=4000
    )
    assert "You must call the tool get_weather now." in single
    assert "Call at most one tool per answer." in single


def open_webui_like_tools(count: int = 28) -> list[ToolSpec]:
    """Dozens of tools with docstring-long descriptions and described parameters, as Open WebUI sends."""
    return [
        ToolSpec(
            f"tool_{n}_" + "x" * 10,
            "Does something useful for the user. " * 8,
            {
                "type": "object",
                "properties": {
                    f"param_{k}": {"type": "string", "description": "A parameter description. " * 4}
                    for k in range(3)
                },
                "required": ["param_0"],
            },
        )
        for n in range(count)
    ]


def test_a_large_tool_list_stays_under_the_size_bound() -> None:
    tools = open_webui_like_tools()
    core = CoreRequest(model="m", messages=HI, tools=tuple(tools))
    prompt = upstream_prompt(core, HI, {}, SETTINGS)
    overhead = len(prompt) - len("Hi")
    assert overhead <= SETTINGS.tools_prompt_max_chars + len("System: \n\nUser: ")
    assert count_tokens(prompt) < 1200  # a plain "Hi" with 28 tools stays cheap
    assert all(tool.name in prompt for tool in tools)  # shortened, never dropped
    roomy = upstream_prompt(core, HI, {}, Settings(tools_prompt_max_chars=100_000))
    assert len(roomy) > len(prompt)  # with room, the descriptions are kept


def test_no_tools_and_no_format_leave_the_prompt_as_it_was() -> None:
    core = CoreRequest(model="m", messages=HI, tools=(WEATHER,), tool_choice=ToolChoice("none"))
    assert upstream_prompt(core, HI, {}, SETTINGS) == "Hi"


# --- verdicts ------------------------------------------------------------------------------------


def judge(core: CoreRequest, repairs: int = 1) -> AnswerJudge:
    return AnswerJudge(core, "PROMPT", Settings(tool_repair_attempts=repairs))


def run(core: CoreRequest, answers: list[str], repairs: int = 1) -> tuple[list[Any], list[str]]:
    """Feed the first answer in pieces, repair with the next ones: (all events, the repair prompts)."""
    j = judge(core, repairs)
    events: list[Any] = []
    first = answers[0]
    for i in range(0, len(first), 4):
        events += j.feed(first[i : i + 4])
    verdict = j.judge_first(j.finish(None))
    repairs_sent = []
    rest = iter(answers[1:])
    while verdict.repair_prompt is not None:
        repairs_sent.append(verdict.repair_prompt)
        verdict = j.judge_repair(next(rest))
    return events + j.final_events(verdict), repairs_sent


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_a_schema_violation_is_repaired_with_the_exact_problem() -> None:
    core = CoreRequest(model="m", messages=HI, tools=(WEATHER,))
    events, repairs = run(core, [tag("get_weather", city=3), tag("get_weather", city="Paris")])
    assert len(repairs) == 1
    assert repairs[0].startswith("PROMPT\n\nAssistant: <tool_call>")
    assert "call 1 (get_weather): its arguments do not match" in repairs[0]
    assert "3 is not of type 'string'" in repairs[0]
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [s.name for s in starts] == ["get_weather"]
    assert [json.loads(e.arguments) for e in events if isinstance(e, ToolCallDelta)] == [{"city": "Paris"}]
    assert events[-1] == ChoiceDone(0, "tool_calls")


def test_no_repair_when_turned_off() -> None:
    core = CoreRequest(model="m", messages=HI, tools=(WEATHER,))
    bad = "Here: " + tag("nope")
    events, repairs = run(core, [bad], repairs=0)
    assert repairs == []
    assert text_of(events) == bad
    assert events[-1] == ChoiceDone(0, "stop")


def test_prose_streams_before_the_call_and_equals_the_final_content() -> None:
    core = CoreRequest(model="m", messages=HI, tools=(WEATHER,))
    j = judge(core)
    early = j.feed("  Let me check the weather for you. ") + j.feed('<tool_call>{"name": "get_weather", ')
    assert text_of(early) == "Let me check the weather for you."  # whitespace at the ends held back
    j.feed('"arguments": {"city": "Paris"}}</tool_call>\n')
    verdict = j.judge_first(j.finish(None))
    assert verdict.choice().text == "Let me check the weather for you."


def test_required_holds_the_text_and_errors_when_no_call_comes() -> None:
    core = CoreRequest(model="m", messages=HI, tools=(WEATHER,), tool_choice=ToolChoice("required"))
    j = judge(core)
    assert j.feed("Sunny, I guess.") == []
    verdict = j.judge_first(j.finish(None))
    assert verdict.repair_prompt is not None
    assert "You must call a tool now (one of: get_weather)" in verdict.repair_prompt
    final = j.judge_repair("Still sunny.")
    with pytest.raises(OpenAIError) as raised:
        final.choice()
    assert (raised.value.status, raised.value.code) == (502, "invalid_tool_call")


def test_structured_output_is_extracted_validated_and_repaired() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    core = CoreRequest(
        model="m", messages=HI, output=OutputFormat("json_schema", schema, "count", strict=True)
    )
    events, repairs = run(core, ['Sure! ```json\n{"n": "two"}\n```', 'Here you go: {"n": 2} hope it helps'])
    assert "'two' is not of type 'integer'" in repairs[0]
    assert text_of(events) == '{"n": 2}'
    with pytest.raises(OpenAIError) as raised:
        run(core, ["no json", "still none"])
    assert raised.value.code == "invalid_structured_output"
    lenient = CoreRequest(model="m", messages=HI, output=OutputFormat("json_schema", schema))
    events, _ = run(lenient, ["no json", "still none"])
    assert text_of(events) == "still none"  # not strict: what the model gave


def test_json_object_wants_an_object() -> None:
    core = CoreRequest(model="m", messages=HI, output=OutputFormat("json_object"))
    events, repairs = run(core, ["[1, 2]", '{"a": [1, 2]}'])
    assert "must be a JSON object" in repairs[0]
    assert text_of(events) == '{"a": [1, 2]}'


def test_json_format_with_tools_gives_a_call_or_the_json() -> None:
    core = CoreRequest(model="m", messages=HI, tools=(WEATHER,), output=OutputFormat("json_object"))
    events, _ = run(core, [tag("get_weather", city="Oslo")])
    assert events[-1] == ChoiceDone(0, "tool_calls")
    events, _ = run(core, ['{"answer": 42}'])
    assert text_of(events) == '{"answer": 42}'


def test_open_webuis_28_builtin_tools_cost_a_plain_hi_about_600_tokens() -> None:
    # The list Open WebUI 0.12 sends with every message (tests/fixtures/open_webui): 20,434 characters of
    # JSON, about 5,300 tokens had it been sent as it is. The default bound keeps names and types.
    tools = tool_specs()
    core = CoreRequest(model="m", messages=HI, tools=tuple(tools))
    prompt = upstream_prompt(core, HI, {}, SETTINGS)
    assert len(prompt) <= SETTINGS.tools_prompt_max_chars + len("System: \n\nUser: Hi")
    assert count_tokens(prompt) < 700
    assert "- search_web(query: string, count?: integer)\n" in prompt
    assert "create_tasks(tasks: {id?: string, content: string, status?: " in prompt
    roomier = upstream_prompt(core, HI, {}, Settings(tools_prompt_max_chars=4500))
    assert "- search_web(query: string, count?: integer): Search the public web for information.\n" in roomier
    assert count_tokens(roomier) < 1000
