"""Deterministic guardrails on generated text.

Blocking (the generator regenerates): template placeholders (``[Name]``, ``{{first_name}}``, lorem
ipsum) and non-https links. Review flags (the output is returned with ``review_required``): numbers,
prices, links and names that do not appear in the context the model was given, and sensitive topics
(pricing, legal, medical, financial).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

PLACEHOLDERS = (
    re.compile(r"\{\{\s*[^{}]{1,40}\s*\}\}"),
    re.compile(r"\[(?:[A-Z][A-Za-z]*|first|last|your|company|insert)[A-Za-z ._'-]{0,30}\]"),
    re.compile(r"<\s*(?:insert|your|first[_ ]name|name|company)[^<>]{0,30}>", re.IGNORECASE),
    re.compile(r"\blorem ipsum\b", re.IGNORECASE),
    re.compile(r"\b(?:TODO|TBD|XXX)\b"),
)
_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"')\]]+", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])([$€£]\s?)?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?\s?(%|k\b|m\b|bn\b)?", re.IGNORECASE)
_NAME = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)*\b")
_SENTENCE_START = re.compile(r"(?:^|[.!?:\n]\s*|<[^>]+>\s*)$")
_COMMON_CAPITALISED = frozenset("""
I Hi Hello Hey Dear Thanks Thank Best Regards Kind Warm Cheers Sincerely Team Subject Re Fwd P.S PS
Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August
September October November December Today Tomorrow Yesterday Please Let We You Our Your The This That These
Those It If When What Why How Looking Happy Great Just Quick Here There As At In On For With From To And But
Or So Also Yes No OK Okay Click Reply Visit Learn Book Join Get See Read Check Call Email SMS Slack
""".split())

SENSITIVE_TOPICS: dict[str, tuple[str, ...]] = {
    "pricing": ("price", "pricing", "discount", "quote", "per month", "/month", "cost", "$", "€", "£", "fee"),
    "legal": ("contract", "liability", "legal", "lawsuit", "attorney", "lawyer", "gdpr", "terms of service",
              "indemn", "compliance", "regulation"),
    "medical": ("diagnos", "medication", "medical", "symptom", "treatment", "prescription", "therapy",
                "health condition", "doctor"),
    "financial": ("invest", "loan", "credit score", "interest rate", "financial advice", "tax", "mortgage",
                  "stock", "returns", "insurance"),
}


@dataclass
class Flag:
    kind: str  # placeholder | insecure_url | unsupported_number | unsupported_url | unsupported_name | sensitive_topic
    message: str
    field: str | None = None
    blocking: bool = False


@dataclass
class GuardrailReport:
    flags: list[Flag] = field(default_factory=list)

    @property
    def blocking(self) -> list[Flag]:
        return [f for f in self.flags if f.blocking]

    @property
    def review_required(self) -> bool:
        return bool(self.flags)

    @property
    def reasons(self) -> list[str]:
        return list(dict.fromkeys(f.message for f in self.flags))

    def as_dict(self) -> dict[str, Any]:
        return {"passed": not self.flags, "review_required": self.review_required, "reasons": self.reasons,
                "flags": [asdict(f) for f in self.flags]}


def _normalise_number(whole: str, frac: str | None) -> str:
    value = whole.replace(",", "")
    if frac and frac.strip("0"):
        value += "." + frac.rstrip("0")
    return value.lstrip("0") or "0"


def numbers_in(text: str) -> dict[str, str]:
    """Normalised number -> how it was written (``$1,200.00`` and ``1200`` normalise alike)."""
    return {_normalise_number(m.group(2), m.group(3)): m.group(0).strip() for m in _NUMBER.finditer(text)}


def _strip_urls(text: str) -> str:
    return _URL.sub(" ", text)


def _strip_placeholders(text: str) -> str:
    for pattern in PLACEHOLDERS:
        text = pattern.sub(" ", text)
    return text


def _is_trivial_number(raw: str, normalised: str) -> bool:
    """Single digits written plainly ("3 tips", "1:1") are not checked against the context."""
    return len(normalised) == 1 and not re.search(r"[$€£%]", raw)


def check(outputs: dict[str, str], *, context: str) -> GuardrailReport:
    """All flags for ``outputs`` given the ``context`` (instructions + memory + guidelines) the model saw."""
    report = GuardrailReport()
    ctx_lower = context.lower()
    ctx_numbers = set(numbers_in(_strip_urls(context)))
    for name, value in outputs.items():
        text = str(value)
        for pattern in PLACEHOLDERS:
            for m in pattern.finditer(text):
                report.flags.append(Flag("placeholder", f"{name} contains the placeholder {m.group(0)!r}", name,
                                         blocking=True))
        for url in _URL.findall(text):
            if not url.lower().startswith("https://"):
                report.flags.append(Flag("insecure_url", f"{name} links to a non-https URL {url}", name, True))
            elif url.lower().rstrip("/.") not in ctx_lower:
                report.flags.append(Flag("unsupported_url", f"{name} links to {url}, which is not in the context",
                                         name))
        plain = _strip_placeholders(_strip_urls(re.sub(r"<[^>]+>", " ", text)))
        for normalised, raw in numbers_in(plain).items():
            if normalised not in ctx_numbers and not _is_trivial_number(raw, normalised):
                report.flags.append(Flag("unsupported_number",
                                         f"{name} states {raw!r}, which does not appear in the context", name))
        for m in _NAME.finditer(plain):
            words = re.split(r"[ -]", m.group(0))
            if _SENTENCE_START.search(plain[:m.start()]):
                words = words[1:]  # a capital at the start of a sentence says nothing
            words = [w for w in words if w not in _COMMON_CAPITALISED]
            missing = [w for w in words if w.lower() not in ctx_lower]
            if missing:
                report.flags.append(Flag("unsupported_name", f"{name} mentions {' '.join(missing)!r}, "
                                                             "which does not appear in the context", name))
    joined = " ".join(str(v) for v in outputs.values()).lower()
    for topic, cues in SENSITIVE_TOPICS.items():
        hit = next((c for c in cues if c in joined), None)
        if hit:
            report.flags.append(Flag("sensitive_topic", f"mentions {topic} ({hit.strip()!r}); needs human review"))
    _dedupe(report)
    return report


def _dedupe(report: GuardrailReport) -> None:
    seen: set[tuple[str, str]] = set()
    kept = []
    for f in report.flags:
        if (f.kind, f.message) not in seen:
            seen.add((f.kind, f.message))
            kept.append(f)
    report.flags = kept
