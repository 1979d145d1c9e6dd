"""One choice's answer, from the model's raw text to what the client gets: pure, no I/O.

The engine feeds the text in (a whole answer in one piece, or a stream's deltas) and gets back the
events that can be sent now; at the end it asks for a verdict: the final `ChoiceOut`, or a repair prompt
to send upstream first (the tool-call and structured-output emulation, docs/tools.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from onemin_relay.core.types import ChoiceDone, ChoiceOut, CoreEvent, CoreRequest, FinishReason, TextDelta
from onemin_relay.translate.chat import finish_reason
from onemin_relay.translate.output import OutputLimiter

if TYPE_CHECKING:
    from onemin_relay.config import Settings


@dataclass(frozen=True)
class Attempt:
    """One upstream answer, as cut by stop sequences and the token limit."""

    text: str
    finish_reason: FinishReason = "stop"

    @property
    def counted_text(self) -> str:
        """The completion a local token count is taken of."""
        return self.text


@dataclass(frozen=True)
class Verdict:
    """What to do with an answer: give `out`, or first ask again with `repair_prompt`."""

    out: ChoiceOut
    repair_prompt: str | None = None

    def choice(self) -> ChoiceOut:
        return self.out


class AnswerJudge:
    """Turns one choice's upstream text into events and a final verdict."""

    def __init__(self, core: CoreRequest, prompt: str, settings: Settings, *, choice: int = 0) -> None:
        self._core = core
        self._prompt = prompt
        self._choice = choice
        self._limiter = OutputLimiter(core.stop, core.token_limit)
        self._emitted = ""  # text already handed out as events

    @staticmethod
    def prompt_for(core: CoreRequest, folded: str, settings: Settings) -> str:
        """The upstream prompt: the folded transcript, plus what the emulation must tell the model."""
        return folded

    @property
    def cut(self) -> bool:
        """A stop sequence or the token limit ended the answer: nothing more is needed from upstream."""
        return self._limiter.done

    def feed(self, delta: str) -> list[CoreEvent]:
        return self._text_events(self._limiter.feed(delta))

    def finish(self, record: Mapping[str, Any] | None) -> Attempt:
        """Upstream is done (or the answer was cut): the whole attempt."""
        self._limiter.finish()
        reason = finish_reason(self._limiter.cut, record)
        return Attempt(self._limiter.text, reason)

    def judge_first(self, attempt: Attempt) -> Verdict:
        return Verdict(ChoiceOut(attempt.text, (), attempt.finish_reason, self._stop_sequence()))

    def judge_repair(self, attempt: Attempt) -> Verdict:
        return self.judge_first(attempt)

    def final_events(self, verdict: Verdict) -> list[CoreEvent]:
        """What is still to send once the verdict is known: the rest of the text, then the end."""
        out = verdict.out
        events: list[CoreEvent] = []
        text = out.text or ""
        if text.startswith(self._emitted):
            events += self._text_events(text[len(self._emitted) :])
        events.append(ChoiceDone(self._choice, out.finish_reason, out.stop_sequence))
        return events

    def _text_events(self, text: str) -> list[CoreEvent]:
        if not text:
            return []
        self._emitted += text
        return [TextDelta(self._choice, text)]

    def _stop_sequence(self) -> str | None:
        return self._limiter.stop_sequence
