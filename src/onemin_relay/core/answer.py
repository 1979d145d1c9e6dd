"""One choice's answer, from the model's raw text to what the client gets: pure, no I/O.

The engine feeds the text in (a whole answer in one piece, or a stream's deltas) and gets back the
events that can be sent now; at the end it asks for a verdict: the final `ChoiceOut`, or a repair prompt
to send upstream first. This is where the tool-call and structured-output emulation decides (docs/tools.md):

- prose streams as it arrives, except text that could begin a call (the scanner holds it), and except
  when the whole text must be checked first (a JSON output format, or `tool_choice` demanding a call);
- a malformed call (bad JSON, unknown tool, arguments failing the schema), a missing demanded call or
  invalid JSON output gets a repair prompt while `TOOL_REPAIR_ATTEMPTS` allows; after that `auto` gives
  the model's text, a demanded call or a `strict` schema an error.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from onemin_relay.core.types import (
    ChoiceDone,
    ChoiceOut,
    CoreEvent,
    CoreRequest,
    FinishReason,
    TextDelta,
    ToolCallDelta,
    ToolCallOut,
    ToolCallStart,
    ToolSpec,
)
from onemin_relay.errors import OpenAIError
from onemin_relay.translate.chat import build_prompt, finish_reason
from onemin_relay.translate.chat_wire import Message
from onemin_relay.translate.output import OutputLimiter
from onemin_relay.translate.structured import canonical_json, extract_json, format_section, value_problems
from onemin_relay.translate.tool_scan import CallScanner, FoundCall, ProseTrimmer
from onemin_relay.translate.tools import offered_tools, tools_section

if TYPE_CHECKING:
    from onemin_relay.config import Settings

_NAMES_LISTED = 20  # tool names a repair message lists


def upstream_prompt(
    core: CoreRequest, messages: Sequence[Message], file_names: Mapping[str, str], settings: Settings
) -> str:
    """The prompt sent upstream: what the emulation must tell the model (as a first `System:` block),
    then the folded transcript."""
    tools = offered_tools(core.tools, core.tool_choice)
    sections = [
        tools_section(
            tools,
            core.tool_choice,
            parallel=core.parallel_tool_calls,
            max_chars=settings.tools_prompt_max_chars,
        ),
        format_section(core.output),
    ]
    instructions = "\n\n".join(section for section in sections if section)
    if not instructions:
        return build_prompt(messages, file_names)
    return f"System: {instructions}\n\n" + build_prompt(messages, file_names, always_label=True)


@dataclass(frozen=True)
class Attempt:
    """One upstream answer: its text as cut by stop sequences and the token limit, and what was found."""

    text: str
    finish_reason: FinishReason = "stop"
    prose: str = ""  # the text outside the calls (the whole text when no tool is offered)
    calls: tuple[tuple[FoundCall, str | None], ...] = ()  # each call, and what is wrong with it
    fallback: str = ""  # the text outside the usable calls, malformed ones left in

    @property
    def counted_text(self) -> str:
        """The completion a local token count is taken of."""
        return self.text


@dataclass(frozen=True)
class Verdict:
    """What to do with an answer: give `out`, or first ask again with `repair_prompt`."""

    out: ChoiceOut | None = None
    repair_prompt: str | None = None
    error: OpenAIError | None = None

    def choice(self) -> ChoiceOut:
        if self.error is not None:
            raise self.error
        assert self.out is not None
        return self.out


@dataclass
class AnswerJudge:
    """Turns one choice's upstream text into events and a final verdict."""

    core: CoreRequest
    prompt: str
    settings: Settings
    choice: int = 0
    _emitted: str = ""  # text already handed out as events
    _first: Attempt | None = None
    _repairs_left: int = 0
    _tools: dict[str, ToolSpec] = field(default_factory=dict)
    _limiter: OutputLimiter = field(init=False)
    _scanner: CallScanner | None = field(init=False)
    _trimmer: ProseTrimmer = field(default_factory=ProseTrimmer)
    _prose: list[str] = field(default_factory=list)
    _checked: list[str | None] = field(default_factory=list)
    _halted: bool = False  # a malformed call was seen: the prose after it waits for the verdict

    def __post_init__(self) -> None:
        self._limiter = OutputLimiter(self.core.stop, self.core.token_limit)
        self._tools = {tool.name: tool for tool in offered_tools(self.core.tools, self.core.tool_choice)}
        self._scanner = CallScanner() if self._tools else None
        self._repairs_left = self.settings.tool_repair_attempts

    @property
    def _demands_call(self) -> bool:
        return bool(self._tools) and self.core.tool_choice.mode == "required"

    @property
    def _holds_text(self) -> bool:
        """The whole text must be checked before any of it is sent."""
        return self.core.output.kind != "text" or self._demands_call

    @property
    def cut(self) -> bool:
        """A stop sequence or the token limit ended the answer: nothing more is needed from upstream."""
        return self._limiter.done

    def feed(self, delta: str) -> list[CoreEvent]:
        return self._stream(self._limiter.feed(delta))

    def finish(self, record: Mapping[str, Any] | None) -> Attempt:
        """Upstream is done (or the answer was cut): the whole attempt."""
        self._stream(self._limiter.finish(), final=True)
        reason = finish_reason(self._limiter.cut, record)
        if self._scanner is None:
            return Attempt(self._limiter.text, reason, self._limiter.text)
        return self._attempt(self._limiter.text, reason, self._scanner, "".join(self._prose))

    def _attempt(self, text: str, reason: FinishReason, scanner: CallScanner, prose: str) -> Attempt:
        checked = self._checked if scanner is self._scanner else [self._check(c) for c in scanner.calls]
        calls = tuple(zip(scanner.calls, checked, strict=True))
        fallback = prose
        if any(problem for _, problem in calls):
            # the malformed calls stay where they were in the text; the usable ones are taken out
            fallback = _fallback_text(text, calls)
        return Attempt(text, reason, prose.strip(), calls, fallback.strip())

    def _stream(self, text: str, *, final: bool = False) -> list[CoreEvent]:
        if self._scanner is None:
            return [] if self._holds_text else self._text_events(text)
        prose = self._scanner.feed(text) + (self._scanner.finish() if final else "")
        self._prose.append(prose)
        for call in self._scanner.calls[len(self._checked) :]:
            self._checked.append(self._check(call))
            self._halted = self._halted or self._checked[-1] is not None
        if self._holds_text or self._halted:
            return []
        return self._text_events(self._trimmer.feed(prose))

    def _check(self, call: FoundCall) -> str | None:
        """What is wrong with a call: None when it names an offered tool with arguments that fit."""
        if call.problem is not None:
            return call.problem
        tool = self._tools.get(call.name or "")
        if tool is None:
            names = ", ".join(list(self._tools)[:_NAMES_LISTED])
            return f"there is no tool named {call.name!r}; the tools are: {names}"
        if tool.parameters:
            problems = value_problems(tool.parameters, dict(call.arguments or {}))
            if problems:
                return "its arguments do not match the tool's parameters: " + "; ".join(problems)
        return None

    # --- verdicts ------------------------------------------------------------------------------

    def judge_first(self, attempt: Attempt) -> Verdict:
        self._first = attempt
        return self._judge(attempt)

    def judge_repair(self, text: str) -> Verdict:
        """The verdict on a repaired answer (a whole text, not streamed)."""
        return self._judge(self._whole(text))

    def _whole(self, text: str) -> Attempt:
        limited = OutputLimiter(self.core.stop, self.core.token_limit)
        text = limited.feed(text) + limited.finish()
        reason = finish_reason(limited.cut, None)
        if not self._tools:
            return Attempt(text, reason, text)
        scanner = CallScanner()
        prose = scanner.feed(text) + scanner.finish()
        return self._attempt(text, reason, scanner, prose)

    def _judge(self, attempt: Attempt) -> Verdict:
        usable = [call for call, problem in attempt.calls if problem is None]
        problems = [(n, call, p) for n, (call, p) in enumerate(attempt.calls, 1) if p is not None]
        if problems or (self._demands_call and not usable):
            return self._repair_or_give_up(attempt, self._tool_problem(problems))
        if usable:
            if not self.core.parallel_tool_calls:
                usable = usable[:1]
            prose = self._content_source(attempt).prose
            calls = tuple(ToolCallOut(_call_id(), c.name or "", canonical_json(c.arguments)) for c in usable)
            return Verdict(ChoiceOut(prose or None, calls, "tool_calls"))
        if self.core.output.kind == "text":
            return Verdict(self._text_choice(attempt.prose, attempt))
        return self._judge_json(attempt)

    def _content_source(self, attempt: Attempt) -> Attempt:
        """Whose prose the client gets: streamed prose was already sent, so it is the first answer's."""
        if self._holds_text or self._first is None:
            return attempt
        return self._first

    def _judge_json(self, attempt: Attempt) -> Verdict:
        value, problem = extract_json(attempt.prose)
        output = self.core.output
        if problem is None and output.kind == "json_object" and not isinstance(value, dict):
            problem = "the answer must be a JSON object"
        if problem is None and output.kind == "json_schema" and output.schema:
            found = value_problems(output.schema, value)
            if found:
                problem = "the JSON does not match the schema: " + "; ".join(found)
        if problem is None:
            return Verdict(self._text_choice(canonical_json(value), attempt))
        return self._repair_or_give_up(
            attempt,
            f"Your answer could not be used: {problem}. "
            + "Answer again with only the JSON value, as described above.",
        )

    def _tool_problem(self, problems: Sequence[tuple[int, FoundCall, str]]) -> str:
        if not problems:
            names = ", ".join(list(self._tools)[:_NAMES_LISTED])
            return (
                f"You must call a tool now (one of: {names}). Answer with only the call(s), each written "
                'as <tool_call>{"name": …, "arguments": {…}}</tool_call>.'
            )
        lines = [f"- call {n}" + (f" ({c.name})" if c.name else "") + f": {p}" for n, c, p in problems]
        return (
            "Your tool call could not be used:\n" + "\n".join(lines) + "\nWrite your answer again with "
            'every call as <tool_call>{"name": …, "arguments": {…}}</tool_call>, arguments as a JSON object '
            "that matches the tool's parameters."
        )

    def _repair_or_give_up(self, attempt: Attempt, problem: str) -> Verdict:
        if self._repairs_left > 0:
            self._repairs_left -= 1
            prompt = f"{self.prompt}\n\nAssistant: {attempt.text}\n\nSystem: {problem}"
            return Verdict(repair_prompt=prompt)
        if self._demands_call:
            return Verdict(error=_failure("invalid_tool_call", "a tool call was demanded", problem))
        if self.core.output.kind == "json_schema" and self.core.output.strict:
            return Verdict(error=_failure("invalid_structured_output", "strict JSON output", problem))
        first = self._content_source(attempt)
        text = first.fallback if first.calls else first.text
        return Verdict(self._text_choice(text, attempt))

    def _text_choice(self, text: str, attempt: Attempt) -> ChoiceOut:
        return ChoiceOut(text, (), attempt.finish_reason, self._limiter.stop_sequence)

    # --- events --------------------------------------------------------------------------------

    def final_events(self, verdict: Verdict) -> list[CoreEvent]:
        """What is still to send once the verdict is known: the rest of the text, the calls, the end."""
        out = verdict.choice()
        events: list[CoreEvent] = []
        text = out.text or ""
        if text.startswith(self._emitted):
            events += self._text_events(text[len(self._emitted) :])
        for number, call in enumerate(out.tool_calls):
            events.append(ToolCallStart(self.choice, number, call.id, call.name))
            events.append(ToolCallDelta(self.choice, number, call.arguments))
        events.append(ChoiceDone(self.choice, out.finish_reason, out.stop_sequence))
        return events

    def _text_events(self, text: str) -> list[CoreEvent]:
        if not text:
            return []
        self._emitted += text
        return [TextDelta(self.choice, text)]


def _call_id() -> str:
    return "call_" + secrets.token_hex(12)


def _fallback_text(text: str, calls: tuple[tuple[FoundCall, str | None], ...]) -> str:
    """`text` with the usable calls taken out (each call's source is found in order)."""
    pieces, position = [], 0
    for call, problem in calls:
        index = text.find(call.source, position)
        if index < 0:
            continue
        if problem is None:
            pieces.append(text[position:index])
            position = index + len(call.source)
    pieces.append(text[position:])
    return "".join(pieces)


def _failure(code: str, what: str, problem: str) -> OpenAIError:
    # `x-should-retry: false`: the SDKs would otherwise retry a 502 twice, each retry billed again
    # with its own repairs; whether to ask once more is the client's call, not its SDK's.
    return OpenAIError(
        502,
        f"The model's answer did not give {what}, even after asking it again "
        f"(TOOL_REPAIR_ATTEMPTS). Last problem: {problem}",
        code=code,
        headers={"x-should-retry": "false"},
    )
