"""Offline proactive extraction end to end: facts (see :mod:`.proactive`) plus the collection's standard
properties, each with a confidence.

Typed values are read from the *cleaned* facts (questions, quoted replies and instructions never yield a
value), through :func:`~memrelay.engine.domain.extraction.offline.extract_properties` (budget, headcount, stack,
stage, dates, options ...), plus rules for what that generic reader cannot see in conversation: the person's
name ("I'm Sarah Chen"), job title and company ("VP of Engineering at TechFlow").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memrelay.engine.core.properties_types import PropertySpec, PropertyType
from memrelay.engine.domain.extraction.offline import ExtractedValue, extract_properties
from memrelay.engine.domain.extraction.proactive import _SIGNOFF_RE, Fact, extract_facts

__all__ = ["OfflineExtraction", "extract", "standard_values"]

_TITLE_HEAD = (r"(?:VP|SVP|EVP|Vice President|Head|Director|Manager|Chief [A-Z][a-z]+ Officer|CEO|CTO|CFO|COO|CMO|"
               r"CRO|CIO|CISO|CPO|Founder|Co-[Ff]ounder|President|Engineer|Architect|Analyst|Lead|Partner|Owner)")
_TITLE_HEAD_RE = re.compile(r"\b" + _TITLE_HEAD + r"\b")
_TITLE = (r"(?P<title>(?:(?:Senior|Sr\.?|Principal|Lead|Staff|Global|Regional|Group|Associate|Executive|Interim|"
          r"Deputy|Assistant)\s+)?" + _TITLE_HEAD +
          r"(?:,?\s+(?:of\s+|for\s+)?(?!at\b)[A-Z][A-Za-z&]+(?:\s+(?:&\s+)?(?!at\b)[A-Z][A-Za-z&]+){0,2})?)")
_COMPANY = r"(?P<company>[A-Z][\w&.'’-]*(?:\s+[A-Z][\w&.'’-]*){0,2})"
_TITLE_RE = re.compile(
    r"\b(?:is|as|was promoted to|has been promoted to|became|becomes|joined as|now|serves as|works as|moved into)\s+"
    r"(?:the\s+|our\s+|their\s+|a\s+|an\s+|now\s+|new\s+)*" + _TITLE + r"(?:\s+(?:at|of|with)\s+" + _COMPANY + r")?")
_WORKS_AT_RE = re.compile(r"\b(?:works at|works for|joined|is at|employed at|is with)\s+" + _COMPANY)
_NAME_RE = re.compile(r"(?:\bmy name is|\bI'm|\bI am|\bthis is)\s+(?P<first>[A-Z][a-z]+)(?:\s+(?P<last>[A-Z][a-z'’-]+))?"
                      r"(?=\s*(?:,|\.|from\b|at\b|and\b|here\b|$))")
_NAME_STOP = frozenset("vp head director manager chief the a an not just really happy glad sure".split())
_ALIASES = {
    "title": ("job_title", "title", "jobtitle", "role", "position"),
    "company": ("company_name", "company", "organization", "organisation", "employer", "account_name"),
    "full_name": ("full_name", "fullname", "contact_name"),
    "first_name": ("first_name", "firstname", "given_name"),
    "last_name": ("last_name", "lastname", "family_name", "surname"),
}


@dataclass(frozen=True)
class OfflineExtraction:
    """Facts (with their source spans) and typed values; ``method`` names the path that ran."""

    facts: list[str]
    values: list[ExtractedValue]
    method: str
    spans: list[tuple[int, int]]
    kind: str = "document"


def extract(content: str, specs: list[PropertySpec], ts: datetime, subject: str | None, *,
            entity_type: str | None = None, embedder: Any = None, max_properties: int | None = None,
            company: str | None = None, author: str | None = None,
            facts: list[Fact] | None = None) -> OfflineExtraction:
    """Offline proactive extraction of ``content`` about the record named ``subject`` (of ``company``), written or
    said by ``author`` when known.

    ``facts``: what :func:`extract_facts` already returned for these same arguments (batch paths compute them once
    to embed every text of a batch in one call); None extracts them here."""
    if facts is None:
        facts = extract_facts(content, subject=subject, ts=ts, entity_type=entity_type, company=company,
                              author=author)
    kind = facts[0].kind if facts else "document"
    values: list[ExtractedValue] = []
    if specs and max_properties != 0:
        cleaned = "\n".join(f.text for f in facts)
        values = extract_properties(cleaned, specs, ts=ts, embedder=embedder) if cleaned else []
        found = {v.property_name for v in values}
        values += [v for v in standard_values(content, facts, specs, subject) if v.property_name not in found]
        values = [v for v in values if not _is_subject_echo(v, subject)]
    if max_properties is not None:
        values = sorted(values, key=lambda v: -v.confidence)[:max_properties]
    return OfflineExtraction([f.text for f in facts], values, "offline", [(f.start, f.end) for f in facts], kind)


_SIG_TITLE_RE = re.compile(r"^\s*(?P<title>[^|,@\d]{2,60}?)\s*(?:\||,|\bat\b|@|–|—)\s*(?P<company>[A-Z][^|,@\d]{1,60}?)\s*$")


def signature_of(content: str) -> tuple[str, str | None, str | None] | None:
    """(name, title, company) from an email signature: the line after a sign-off ("Best,") is the name, the next
    one "VP Engineering | TechFlow" (or ", " / " at ") the title and company. Signatures are never facts."""
    lines = [ln.strip() for ln in content.splitlines()]
    for i, line in enumerate(lines):
        if not _SIGNOFF_RE.match(line):
            continue
        rest = [ln for ln in lines[i + 1:i + 5] if ln]
        if not rest or len(rest[0].split()) > 4 or not rest[0][:1].isupper() or rest[0].startswith(">"):
            continue
        m = _SIG_TITLE_RE.match(rest[1]) if len(rest) > 1 else None
        if m and _TITLE_HEAD_RE.search(m.group("title")):
            return rest[0], m.group("title").strip(), m.group("company").strip()
        return rest[0], None, None
    return None


def _same_person(name: str, subject: str | None) -> bool:
    """The signer is the record (first-name match), or the record has no name yet."""
    if not subject or subject.startswith("The "):
        return True
    return name.split()[0].lower() in {w.lower() for w in subject.split()}


def _is_subject_echo(v: ExtractedValue, subject: str | None) -> bool:
    """A value that is just the neutral subject ("The contact") read back from a rewritten fact."""
    neutral = ("The contact", "The company", "The deal")  # what neutral_subject() writes
    return isinstance(v.value, str) and (v.value in neutral or (subject is not None and "@" in subject
                                                                 and v.value.startswith(neutral)))


def standard_values(content: str, facts: list[Fact], specs: list[PropertySpec],
                    subject: str | None) -> list[ExtractedValue]:
    """Name, title and company read from conversation, for the properties of ``specs`` that hold them."""
    by_alias: dict[str, PropertySpec] = {}
    for spec in specs:
        if spec.type not in (PropertyType.TEXT,):
            continue
        for key, names in _ALIASES.items():
            if spec.propertyName.lower() in names and key not in by_alias:
                by_alias[key] = spec
    if not by_alias:
        return []
    out: list[ExtractedValue] = []
    subject_words = {w.lower() for w in (subject or "").split()} - {"the", "contact", "company"}
    for f in facts:
        about_subject = bool(subject_words) and any(w.lower().strip("'’s") in subject_words
                                                    for w in f.text.split()[:3])
        if not about_subject:
            continue
        m = _TITLE_RE.search(f.text)
        if m and "title" in by_alias:
            out.append(ExtractedValue(by_alias["title"].propertyName, m.group("title").strip(" ,"), 0.8, f.text,
                                      "title_rule"))
        company = (m.group("company") if m and m.group("company") else None)
        if company is None:
            w = _WORKS_AT_RE.search(f.text)
            company = w.group("company") if w else None
        if company and "company" in by_alias:
            out.append(ExtractedValue(by_alias["company"].propertyName, company.strip(" .,"), 0.75, f.text,
                                      "company_rule"))
    for m in _NAME_RE.finditer(content):
        first, last = m.group("first"), m.group("last")
        if first.lower() in _NAME_STOP:
            continue
        if "first_name" in by_alias:
            out.append(ExtractedValue(by_alias["first_name"].propertyName, first, 0.8, m.group(0), "self_intro"))
        if last and "last_name" in by_alias:
            out.append(ExtractedValue(by_alias["last_name"].propertyName, last, 0.8, m.group(0), "self_intro"))
        if last and "full_name" in by_alias:
            out.append(ExtractedValue(by_alias["full_name"].propertyName, f"{first} {last}", 0.8, m.group(0),
                                      "self_intro"))
        break
    sig = signature_of(content)
    if sig is not None and _same_person(sig[0], subject):
        signer, title, company = sig
        evidence = f"{signer} / {title} | {company}"
        found = {v.property_name for v in out}
        if title and "title" in by_alias and by_alias["title"].propertyName not in found:
            out.append(ExtractedValue(by_alias["title"].propertyName, title, 0.7, evidence, "signature"))
        if company and "company" in by_alias and by_alias["company"].propertyName not in found:
            out.append(ExtractedValue(by_alias["company"].propertyName, company, 0.7, evidence, "signature"))
    best: dict[str, ExtractedValue] = {}
    for v in out:  # the latest statement of a property wins (a later "now CMO" after "VP Marketing")
        best[v.property_name] = v
    return list(best.values())
