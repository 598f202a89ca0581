"""Email keys: one normal form, and a refusal for what is not an email.

The rule (documented in the README's security model):

1. Unicode NFKC (fullwidth ``ａ`` → ``a``), then every invisible format character (zero-width space,
   joiners, BOM, soft hyphen — Unicode category ``Cf``) is removed, surrounding space stripped, lower-cased.
2. A trailing dot of the domain is dropped (``a@acme.com.`` is ``a@acme.com``).
3. It must then be ``local@domain``: one ``@``, local part 1–64 characters, domain 1–253 characters of
   dot-separated labels (letters, digits, hyphens; internationalised letters allowed), total ≤ 254, no
   whitespace or control characters.
4. A label (the local part or one domain label) may not mix scripts (Latin with Cyrillic or Greek): such
   look-alikes (``pаypal`` with a Cyrillic ``а``) are refused rather than becoming a separate record.
"""

from __future__ import annotations

import re
import unicodedata

from memrelay.engine.core.errors import ValidationFailed

MAX_EMAIL = 254
MAX_LOCAL = 64
_LABEL = re.compile(r"^[^\W_](?:[\w-]{0,61}[^\W_])?$")
_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE")


def _scripts(text: str) -> set[str]:
    found: set[str] = set()
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            found.update(s for s in _SCRIPTS if name.startswith(s))
    return found


def clean_email(raw: str) -> str:
    """NFKC, invisible characters removed, stripped, lower-cased, trailing domain dot dropped (no validation)."""
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf").strip().lower()
    return text[:-1] if text.endswith(".") and "@" in text else text


def email_problem(email: str) -> str | None:
    """Why a cleaned email is not acceptable as an email key, or ``None``."""
    if len(email) > MAX_EMAIL:
        return f"longer than {MAX_EMAIL} characters"
    if email.count("@") != 1:
        return "expected exactly one '@'"
    local, domain = email.split("@")
    if not local or len(local) > MAX_LOCAL:
        return f"the part before '@' must be 1-{MAX_LOCAL} characters"
    if any(ch.isspace() or ch == "\ufffd" or unicodedata.category(ch).startswith("C") for ch in local):
        return "whitespace, control characters or undecodable bytes"
    if not domain or len(domain) > 253 or not all(_LABEL.match(label) for label in domain.split(".")):
        return "the domain is not a valid host name"
    if any(len(_scripts(part)) > 1 for part in (local, *domain.split("."))):
        return "mixes scripts (e.g. Latin and Cyrillic look-alikes)"
    return None


def normalise_email(raw: str) -> str:
    """The stored form of an email key; ValidationFailed (422) when it is not an email."""
    email = clean_email(raw)
    problem = email_problem(email)
    if problem:
        raise ValidationFailed(f"not a valid email address: {problem}",
                               details={"field": "email", "value": raw[:100]})
    return email
