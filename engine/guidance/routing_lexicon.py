"""Acronyms of B2B SaaS sales, success, support, legal and finance, with their expansions, for guideline routing.

A guideline says "business associate agreement", the agent's task says "BAA"; the small embedder and the lexical
index over the guidelines' own words do not know they are one thing. Each entry is one acronym and its
expansions — definitional knowledge a reviewer can check in a glossary, nothing inferred. Both sides of routing
(every section of a guideline and the task) get one concept token per acronym or expansion they mention
(:func:`concept_tokens`), so a task and a rule naming the same thing in different forms share a rare term.

Broader groups of related vocabulary (compliance, payment disputes, marketing use of customers, churn ...) and a
no-route rule built on them were measured on bench/datasets/routing and did not help the held-out half; see
guideline_routing's module docstring. Additions: general acronyms only, never a phrase from an evaluation task.
"""

from __future__ import annotations

from functools import lru_cache

from memrelay.engine.domain.extraction.keywords import content_stems

CONCEPT_PREFIX = "@"  # concept tokens never collide with word stems (which are alphanumeric)

ACRONYMS: dict[str, tuple[str, ...]] = {
    # an acronym and its expansions: definitional, nothing else
    "baa": ("BAA", "business associate agreement"),
    "phi": ("PHI", "ePHI", "protected health information"),
    "msa": ("MSA", "master subscription agreement", "master services agreement"),
    "dpa": ("DPA", "data processing addendum", "data processing agreement"),
    "nda": ("NDA", "non-disclosure agreement"),
    "sla": ("SLA", "service level agreement"),
    "dsar": ("DSAR", "data subject access request", "data subject request"),
    "pii": ("PII", "personally identifiable information"),
    "po": ("PO", "purchase order"),
    "sow": ("SOW", "statement of work"),
    "rca": ("RCA", "root cause analysis"),
    "eta": ("ETA", "estimated time of arrival"),
    "ga": ("GA", "general availability", "generally available"),
    "icp": ("ICP", "ideal customer profile"),
    "qbr": ("QBR", "quarterly business review"),
    "csm": ("CSM", "customer success manager", "success manager"),
    "ae": ("AE", "account executive"),
    "sdr": ("SDR", "sales development representative"),
    "cro": ("CRO", "chief revenue officer"),
    "sso": ("SSO", "single sign-on"),
    "pentest": ("pentest", "pen test", "penetration test"),
    "arr": ("ARR", "annual recurring revenue"),
    "poc": ("POC", "proof of concept"),
    "rfp": ("RFP", "request for proposal"),
}


def _index() -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """First stem of a term -> [(the term's stems, concept token)], longest terms first."""
    out: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for concept, terms in ACRONYMS.items():
        for term in terms:
            stems = tuple(content_stems(term))
            if stems:
                out.setdefault(stems[0], []).append((stems, CONCEPT_PREFIX + concept))
    for entries in out.values():
        entries.sort(key=lambda e: -len(e[0]))
    return out


_INDEX = _index()


def concept_tokens(stems: list[str] | tuple[str, ...]) -> list[str]:
    """One concept token per occurrence of an acronym or expansion in ``stems`` (a text's content stems, in
    order); the longest form wins where forms overlap."""
    return [t for t in _normalise(tuple(stems)) if is_concept(t)]


@lru_cache(maxsize=8192)
def _normalise(stems: tuple[str, ...]) -> tuple[str, ...]:
    """``stems`` with every acronym or expansion (one or more stems) replaced by its concept token."""
    out: list[str] = []
    i = 0
    while i < len(stems):
        for term, token in _INDEX.get(stems[i], ()):
            if stems[i : i + len(term)] == term:
                out.append(token)
                i += len(term)
                break
        else:
            out.append(stems[i])
            i += 1
    return tuple(out)


def is_concept(token: str) -> bool:
    """True for a concept token (never a word stem)."""
    return token.startswith(CONCEPT_PREFIX)
