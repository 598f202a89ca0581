"""Numbers, money and percentages in free text, with one canonical form for comparison."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from memrelay.engine.domain.extraction.lexicon import NUMBER_WORDS
from memrelay.engine.domain.text_gates import has_ascii_fold

_CURRENCY_SYMBOLS = {"$": "USD", "us$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_CURRENCY_WORDS = {
    "usd": "USD",
    "dollars": "USD",
    "dollar": "USD",
    "eur": "EUR",
    "euros": "EUR",
    "euro": "EUR",
    "gbp": "GBP",
    "pounds": "GBP",
    "jpy": "JPY",
    "inr": "INR",
    "cad": "CAD",
    "aud": "AUD",
    "chf": "CHF",
}
_MAGNITUDES = {
    "k": 1e3,
    "thousand": 1e3,
    "m": 1e6,
    "mm": 1e6,
    "mn": 1e6,
    "mio": 1e6,
    "million": 1e6,
    "b": 1e9,
    "bn": 1e9,
    "billion": 1e9,
}
# A one-letter "m"/"b" is a magnitude only for money ("5m" alone could be minutes or metres).
_MONEY_ONLY_MAGNITUDES = frozenset({"m", "b"})  # lower-case only: "5M users" is 5 million

_AMOUNT_RE = re.compile(
    r"""
    (?:(?P<pre>US\$|[$€£¥₹]|\b(?:USD|EUR|GBP|CAD|AUD|CHF))\s?)?
    (?<![\w.,])(?<![A-Za-z]-)
    (?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)
    (?:\s?(?P<mag>thousand|million|billion|mio|mn|mm|bn|[kKmMbB])(?![A-Za-z]))?
    (?:\s?(?P<pct>%|percent\b|per\s?cent\b))?
    (?:\s?(?P<post>USD|EUR|GBP|CAD|AUD|CHF|dollars?|euros?|pounds)\b)?
    (?![\w%])
    """,
    re.VERBOSE | re.IGNORECASE,
)
_NUMBER_WORD_RE = re.compile(r"\b(" + "|".join(NUMBER_WORDS) + r")\b", re.IGNORECASE)
_DIGIT_RE = re.compile(r"\d")  # every amount and every digit code holds one
_WORD_RE = re.compile(r"[A-Za-z]+")
_NUMBER_WORDS_LOWER = frozenset(w.lower() for w in NUMBER_WORDS)
_ALNUM_CODE_RE = re.compile(
    r"\b(?=[A-Za-z0-9-]*[A-Za-z])(?=[A-Za-z0-9-]*\d)[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*\b"
)


@dataclass(frozen=True)
class Amount:
    """A number found in text: value after magnitude (k/M/B), currency code if any, percent flag."""

    value: float
    start: int
    end: int
    text: str
    currency: str | None = None
    percent: bool = False
    magnitude: bool = False

    @property
    def is_money(self) -> bool:
        return self.currency is not None


def find_amounts(text: str) -> list[Amount]:
    """Every number in ``text`` with its money/percent reading, in order of appearance."""
    return list(_amounts_in(text)) if _DIGIT_RE.search(text) else []


@lru_cache(maxsize=8192)
def _amounts_in(text: str) -> tuple[Amount, ...]:
    """Memoised: recall, dedup and the topic slots read the same sentence's amounts several times."""
    found: list[Amount] = []
    for m in _AMOUNT_RE.finditer(text):
        pre, post, mag = m.group("pre"), m.group("post"), m.group("mag")
        currency = _currency(pre) or _currency(post)
        value = float(m.group("num").replace(",", ""))
        start = m.start() if pre else m.start("num")
        end = m.end()
        if mag and mag in _MONEY_ONLY_MAGNITUDES and currency is None:
            mag, end = None, m.end("num")  # "5m" alone may be minutes or metres: keep just the number
        if mag:
            value *= _MAGNITUDES[mag.lower()]
        found.append(
            Amount(value, start, end, text[start:end].strip(), currency, bool(m.group("pct")), bool(mag))
        )
    return tuple(found)


def canonical_number(value: float, *, percent: bool = False) -> str:
    """'250000', '2.5', '15%': one spelling per quantity."""
    text = str(int(value)) if float(value).is_integer() else f"{value:.6f}".rstrip("0").rstrip(".")
    return text + ("%" if percent else "")


def number_tokens(text: str) -> set[str]:
    """Canonical numbers, number words ('three' -> '3') and digit codes ('Q1', 'EC2', 'GPT-4') in text."""
    amounts, words, codes = _number_parts(text)
    tokens = {t for t in amounts}  # built as the scan found them: the set iterates in the same order as before
    tokens |= {t for t in words}
    tokens |= {t for t in codes}
    return tokens


@lru_cache(maxsize=8192)
def _number_parts(text: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(canonical amounts, number words, digit codes) of ``text`` in order of appearance (memoised)."""
    digits = _DIGIT_RE.search(text) is not None  # every amount and every digit code holds a digit
    amounts = tuple(canonical_number(a.value, percent=a.percent) for a in find_amounts(text)) if digits else ()
    words = tuple(str(NUMBER_WORDS[w.lower()]) for w in _NUMBER_WORD_RE.findall(text) if w.lower() in NUMBER_WORDS) \
        if _maybe_number_word(text) else ()
    codes = tuple(code.lower() for code in _ALNUM_CODE_RE.findall(text)) if digits else ()
    return amounts, words, codes


def _maybe_number_word(text: str) -> bool:
    """False only if ``text`` holds no number word: a match of ``\\b<word>\\b`` is a whole run of ASCII letters (a text
    with a character folding to one, "K" (Kelvin) / "k", is always searched)."""
    if has_ascii_fold(text):
        return True
    return not _NUMBER_WORDS_LOWER.isdisjoint(_WORD_RE.findall(text.lower()))


def _currency(token: str | None) -> str | None:
    if not token:
        return None
    token = token.strip().lower()
    return _CURRENCY_SYMBOLS.get(token) or _CURRENCY_WORDS.get(token)
