"""Deterministic answers: tests import `expected_answer` to know, to the character, what the simulator says.

Answers always contain multi-byte UTF-8 (« » — é emoji CJK) so byte-level bugs in the relay show up.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote

_ECHO_CHARS = 80
_WORD = re.compile(r"\S+")
_YOUTUBE = re.compile(r"https?://(?:www\.|m\.)?(?:youtube\.com/(?:watch\?v=|shorts/)|youtu\.be/)[\w-]{6,}")
_SCRIPTED = re.compile(r"\[\[sim:answer=([^\[\]]*)\]\]")  # no bracket inside: linear scan
_LENGTH = re.compile(r"\[\[sim:[^\[\]]*?\blength=(\d{1,7})")  # no bracket inside: linear scan
_MAX_LENGTH = 200_000
_YOUTUBE_LIMIT = 3  # the service reads the transcripts of at most three videos named in a prompt
_FILLER = (
    " Le café est prêt — 準備完了 🍵.",
    " Étape suivante: vérifier les données 📊 (数据).",
    " Tout fonctionne « comme prévu » ✅ 一切正常.",
)


def _echo(prompt: str) -> str:
    """The prompt with whitespace runs collapsed, cut to `_ECHO_CHARS`; only the words shown are read, so a
    30 MB prompt costs no more than a short one (collapsing all of it blocked the event loop for a second)."""
    words: list[str] = []
    size = -1
    for word in _WORD.finditer(prompt):
        words.append(word.group())
        size += len(words[-1]) + 1
        if size > _ECHO_CHARS:
            break
    flat = " ".join(words)
    return flat if len(flat) <= _ECHO_CHARS else flat[: _ECHO_CHARS - 1] + "…"


def scripted_answer(prompt: str) -> str | None:
    """The text of the last `[[sim:answer=TEXT]]` magic word in `prompt` (TEXT percent-decoded, so `%5B`
    and `%5D` give brackets), or None. The last one wins: a prompt folding a conversation repeats earlier
    turns' magic words before the latest."""
    found = list(_SCRIPTED.finditer(prompt))
    return unquote(found[-1].group(1)) if found else None


def expected_answer(
    prompt: str,
    *,
    web_search: bool = False,
    sites: int = 3,
    history: int = 0,
    images: int = 0,
    files: int = 0,
) -> str:
    """The simulator's answer to `prompt` (as sent upstream, magic words included).

    `web_search`/`sites` mirror `settings.webSearchSettings.webSearch`/`numOfSite`; `history` is the number of
    earlier conversation messages the simulator used (after `historyMessageLimit`); `images`/`files` count
    `attachments.images` / `attachments.files`. YouTube links in the prompt are noticed (up to three, as
    the service reads their transcripts). A `[[sim:length=N]]` magic word (N ≤ 200000) pads the answer to at
    least N characters.
    """
    echo = _echo(prompt)
    digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:8]
    parts = [f"«{echo}» — réponse simulée #{digest} 🤖."]
    if web_search:
        parts.append(f" 🔎 Web search: {sites} sites consulted.")
    if history:
        parts.append(f" 🧠 Remembered {history} earlier messages.")
    if images:
        parts.append(f" 🖼 Looked at {images} image(s).")
    if files:
        parts.append(f" 📄 Read {files} file(s).")
    videos = min(len(set(_YOUTUBE.findall(prompt))), _YOUTUBE_LIMIT)
    if videos:
        parts.append(f" 📺 Watched {videos} YouTube video(s).")
    parts.append(" 你好，世界!")
    length = _LENGTH.search(prompt)
    target = min(int(length.group(1)), _MAX_LENGTH) if length else 0
    size = sum(map(len, parts))
    index = 0
    while size < target:
        filler = _FILLER[index % len(_FILLER)]
        parts.append(filler)
        size += len(filler)
        index += 1
    return "".join(parts)
