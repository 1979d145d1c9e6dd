"""What the relay does to the model's text itself: `stop` sequences and `max_tokens` truncation.

1min.ai takes neither, so the whole answer is generated upstream and cut here. `OutputLimiter` works on
a stream of deltas (and on a whole answer: one `feed` then `finish`), emitting only text that is final.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from onemin_relay.translate.tokens import count_tokens, truncate_to_tokens

FinishReason = Literal["stop", "length", "content_filter"]
Cut = Literal["stop", "length"]
# Text over the token limit is held while more of it could still join the last token; at most this much.
_MAX_UNSURE_CHARS = 2000


class OutputLimiter:
    """Applies stop sequences, then the token limit, to text arriving in pieces.

    A tail that could be the start of a stop sequence is held back until the next piece shows it is not;
    past the token limit, text is held until the cut is where it would be in the whole answer.
    Once a limit is hit, `done` is true, `cut` says which, and further input is ignored.
    """

    def __init__(self, stop: Sequence[str] = (), max_tokens: int | None = None) -> None:
        self._stops = tuple(s for s in stop if s)
        self._hold = max((len(s) for s in self._stops), default=1) - 1
        self._max_tokens = max_tokens
        self._pending = ""  # received, not yet emitted (may hold a partial stop sequence)
        self._emitted = ""  # everything emitted so far
        self._emitted_bytes = 0
        self._unsure = ""  # over the token limit, but the next piece could still change where it is cut
        # `_emitted[:_counted]` ends where tiktoken's tokens split, and holds `_counted_tokens` tokens:
        # only the text after it is tokenised again, so a long stream costs linear, not quadratic, time.
        self._counted = 0
        self._counted_tokens = 0
        self.done = False
        self.cut: Cut | None = None  # set when a stop sequence or the token limit cut the text
        self.stop_sequence: str | None = None  # the stop sequence that cut it

    @property
    def text(self) -> str:
        return self._emitted

    def feed(self, delta: str) -> str:
        """Take the next piece of the answer; return the text that can be sent on now."""
        if self.done or not delta:
            return ""
        self._pending += delta
        found = self._first_stop(self._pending)
        if found is not None:
            cut, stop = found
            ready, self._pending = self._pending[:cut], ""
            emitted = self._limit_tokens(ready, final=True)
            if not self.done:
                self.done, self.cut, self.stop_sequence = True, "stop", stop
            return emitted
        keep = min(self._hold, len(self._pending))
        ready = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(ready) :]
        return self._limit_tokens(ready)

    def finish(self) -> str:
        """The answer is complete: release what was held back."""
        if self.done:
            return ""
        rest, self._pending = self._pending, ""
        emitted = self._limit_tokens(rest, final=True)
        self.done = True
        return emitted

    def _first_stop(self, text: str) -> tuple[int, str] | None:
        """Where the first stop sequence starts, and which (the longest, when several start there)."""
        found = [(i, -len(stop), stop) for stop in self._stops if (i := text.find(stop)) >= 0]
        if not found:
            return None
        index, _, stop = min(found)
        return index, stop

    def _limit_tokens(self, ready: str, *, final: bool = False) -> str:
        """Emit what of `ready` fits the token limit; `final`: no more text will follow it."""
        ready, self._unsure = self._unsure + ready, ""
        if not ready or self.done:
            return ""
        limit = self._max_tokens
        candidate = self._emitted + ready
        size = self._emitted_bytes + len(ready.encode("utf-8"))
        # A token is at least one byte, so below `limit` bytes no tokenising is needed.
        if limit is None or size <= limit:
            self._emitted, self._emitted_bytes = candidate, size
            return ready
        budget = limit - self._counted_tokens
        boundary = _last_token_boundary(candidate, max(self._counted, len(self._emitted) - 1))
        if count_tokens(candidate[self._counted :]) <= budget:
            if boundary is not None:
                self._counted_tokens += count_tokens(candidate[self._counted : boundary])
                self._counted = boundary
            self._emitted, self._emitted_bytes = candidate, size
            return ready
        allowed = candidate[: self._counted] + truncate_to_tokens(candidate[self._counted :], budget)[0]
        if not final and (boundary is None or boundary < len(allowed)) and len(ready) < _MAX_UNSURE_CHARS:
            # The last token may not be complete ("Paragra" + "ph" is one token, not two): wait.
            self._unsure = ready
            return ""
        emitted = allowed[len(self._emitted) :] if allowed.startswith(self._emitted) else ""
        self._emitted += emitted
        self._emitted_bytes = len(self._emitted.encode("utf-8"))
        self.done, self.cut, self._pending = True, "length", ""
        return emitted


def _last_token_boundary(text: str, start: int) -> int | None:
    """The last index after `start` where cl100k's tokens of `text` are those of the two halves joined.

    cl100k first splits text into words by a regex and never merges across them; a word always ends
    at a line break followed by a non-space, and where a run of letters meets anything but a letter
    (checked against tiktoken on random text)."""
    for k in range(len(text) - 1, max(start, 0), -1):
        before, here = text[k - 1], text[k]
        if (before in "\r\n" and not here.isspace()) or (before.isalpha() and not here.isalpha()):
            return k
    return None


def limit_text(text: str, stop: Sequence[str] = (), max_tokens: int | None = None) -> tuple[str, Cut | None]:
    """A whole answer through the same rules as a stream: (the text, what cut it or None)."""
    limiter = OutputLimiter(stop, max_tokens)
    out = limiter.feed(text) + limiter.finish()
    return out, limiter.cut
