"""A memory's *readings*: what scoring reads from its text alone, computed once when the memory is written and stored
with it (``memories.readings``), so a recall that meets the memory for the first time in a process does not read the
text again.

Today that is :func:`~memrelay.engine.domain.semantics.statement_answers` — the topic slots a statement answers and
their values, behind the topic label, topic families and answer matching of recall — and
:func:`~memrelay.engine.domain.semantics.value_kinds` (the kinds of value and the people it names): the costly part
of scoring a memory this process has not met, ~36 of them ~5 ms of a first org-wide recall (2,000 memories;
bench/bench_warm.py). Reading them back costs a small JSON parse.

Stored readings are used only when they were taken from the same text (a hash of it) by the same reading code
(``READINGS_VERSION``, a hash of this package's sources): any change to either makes them ignored, and the text is
read as before. A memory without readings (written before they existed) is read as before too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from memrelay.engine.domain.semantics import TopicValues, statement_answers, value_kinds


def _source_hash() -> str:
    """Hash of every source file of the domain package: the code that reads a text."""
    digest = hashlib.blake2b(digest_size=6)
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


READINGS_VERSION = _source_hash()


def _text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def text_readings(text: str) -> dict[str, Any]:
    """The readings of ``text`` as stored with its memory (JSON)."""
    answers = statement_answers(text)
    kinds, people = value_kinds(text)
    return {"v": READINGS_VERSION, "h": _text_hash(text),
            "answers": {k: [sorted(tv.current), sorted(tv.former)] for k, tv in answers.items()},
            "kinds": sorted(kinds), "people": sorted(people)}


def is_current(text: str, stored: Any) -> bool:
    """Whether ``stored`` (a memory's readings column, decoded) was taken from ``text`` by this reading code and is
    well-formed: what :func:`prime` takes. A memory whose readings are not current is refreshed by the worker's
    readings round (``memrelay.engine.stores.memory_readings``)."""
    return (isinstance(stored, dict) and stored.get("v") == READINGS_VERSION and stored.get("h") == _text_hash(text)
            and isinstance(stored.get("answers"), dict) and isinstance(stored.get("kinds"), list)
            and isinstance(stored.get("people"), list))


def prime(text: str, stored: Any) -> bool:
    """Take ``stored`` (a memory's readings column, decoded) as the readings of ``text`` when it is current for
    this text and this code (:func:`is_current`); False (nothing primed) otherwise."""
    if text in statement_answers.primed and text in value_kinds.primed:
        return True
    if not is_current(text, stored):
        return False
    answers, kinds, people = stored["answers"], stored["kinds"], stored["people"]
    statement_answers.prime(text, {k: TopicValues(frozenset(cur), frozenset(former))
                                   for k, (cur, former) in answers.items()})
    value_kinds.prime(text, (frozenset(kinds), frozenset(people)))
    return True
