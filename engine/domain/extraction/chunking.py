"""Split long content into LLM-sized chunks along its natural units, by content type.

* transcript — speaker turns (``Name: text`` lines, optionally time-stamped);
* email — messages of a thread (``From:`` headers / ``On … wrote:`` quotes), then paragraphs;
* document — paragraphs (blank-line separated).

Units are packed greedily into chunks of at most ``max_tokens`` (cl100k) tokens; a unit longer than the
budget is split on sentence boundaries and, as a last resort, on token boundaries.
"""

from __future__ import annotations

import re
from typing import Literal

from memrelay.engine.core.tokens import count_tokens, split_to_budget
from memrelay.engine.domain.extraction.sentences import split_sentences

ContentType = Literal["transcript", "email", "document"]

_TURN_RE = re.compile(r"^\s*(?:\[?\d{1,2}:\d{2}(?::\d{2})?\]?\s*)?[A-Z][\w.'\- ]{0,40}:\s+\S", re.MULTILINE)
_EMAIL_HEADER_RE = re.compile(r"^(?:From|To|Subject|Date|Cc):\s", re.MULTILINE | re.IGNORECASE)
_EMAIL_SPLIT_RE = re.compile(r"(?=^From:\s)|(?=^On .{5,200} wrote:\s*$)|(?=^-{2,} ?Original Message ?-{2,})",
                             re.MULTILINE | re.IGNORECASE)
_PARAGRAPH_RE = re.compile(r"\n\s*\n")


def detect_content_type(text: str) -> ContentType:
    """Best guess of the content's shape (headers → email; mostly ``Name:`` lines → transcript)."""
    if len(_EMAIL_HEADER_RE.findall(text)) >= 2:
        return "email"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) >= 2 and len(_TURN_RE.findall(text)) >= max(2, len(lines) // 2):
        return "transcript"
    return "document"


def units(text: str, content_type: ContentType) -> list[str]:
    """The natural units of ``text``: speaker turns, email messages/paragraphs, or paragraphs."""
    if content_type == "transcript":
        starts = [m.start() for m in _TURN_RE.finditer(text)]
        if starts and starts[0] > 0:
            starts.insert(0, 0)
        bounds = zip(starts, [*starts[1:], len(text)], strict=False)
        return [text[a:b].strip() for a, b in bounds if text[a:b].strip()] or [text.strip()]
    if content_type == "email":
        parts = [p for p in _EMAIL_SPLIT_RE.split(text) if p.strip()]
        return [para for part in parts for para in _paragraphs(part)]
    return _paragraphs(text)


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in _PARAGRAPH_RE.split(text) if p.strip()]


def _split_unit(unit: str, max_tokens: int) -> list[str]:
    """A unit over budget, split on sentences (then on tokens for a single huge sentence)."""
    pieces: list[str] = []
    for sentence in split_sentences(unit) or [unit]:
        if count_tokens(sentence) <= max_tokens:
            pieces.append(sentence)
        else:
            pieces.extend(split_to_budget(sentence, max_tokens))
    return pack(pieces, max_tokens, sep=" ")


def pack(pieces: list[str], max_tokens: int, *, sep: str = "\n\n") -> list[str]:
    """Greedily join consecutive ``pieces`` while a chunk stays within ``max_tokens``."""
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    sep_cost = count_tokens(sep)
    for piece in pieces:
        cost = count_tokens(piece)
        if cost > max_tokens:
            if current:
                chunks.append(sep.join(current))
                current, used = [], 0
            chunks.extend(_split_unit(piece, max_tokens))
            continue
        if current and used + sep_cost + cost > max_tokens:
            chunks.append(sep.join(current))
            current, used = [], 0
        used += cost + (sep_cost if current else 0)
        current.append(piece)
    if current:
        chunks.append(sep.join(current))
    return chunks


def chunk_content(text: str, max_tokens: int, content_type: ContentType | None = None) -> list[str]:
    """``text`` as chunks of at most ``max_tokens`` tokens, split along its units."""
    if count_tokens(text) <= max_tokens:
        return [text]
    kind = content_type or detect_content_type(text)
    return pack(units(text, kind), max_tokens, sep="\n" if kind == "transcript" else "\n\n")
