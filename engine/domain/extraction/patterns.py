"""Emails, URLs and phone numbers in free text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

_TLDS = (
    "com|org|net|io|ai|co|dev|app|tech|us|uk|de|fr|es|it|nl|se|no|dk|fi|ch|at|be|ca|au|nz|in|jp|cn|br|mx|eu"
    "|xyz|so|gg|me|info|biz|cloud|sh|ly|to|tv|fm|page|site|online|store|shop|agency|studio|health|finance"
)
EMAIL_RE = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b")
URL_RE = re.compile(
    rf"""(?<![@\w.-])(?:
        https?://[^\s<>"'()\[\]]+
      | (?:www\.)?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+(?:{_TLDS})\b(?:/[^\s<>"'()\[\]]*)?
    )""",
    re.VERBOSE | re.IGNORECASE,
)
PHONE_RE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,8}){1,4}(?!\w)"
)
_TRAILING = ".,;:!?)]}'\""


@dataclass(frozen=True)
class Match:
    """A pattern hit: the normalised value and its span in the text."""

    value: str
    start: int
    end: int


def find_emails(text: str) -> list[Match]:
    """Email addresses, lower-cased."""
    return [Match(m.group(0).lower(), m.start(), m.end()) for m in EMAIL_RE.finditer(text)]


def find_urls(text: str) -> list[Match]:
    """URLs and bare domains (not the domain part of an email), normalised with :func:`normalize_url`."""
    out = []
    for m in URL_RE.finditer(text):
        raw = m.group(0).rstrip(_TRAILING)
        out.append(Match(normalize_url(raw), m.start(), m.start() + len(raw)))
    return out


def find_phones(text: str) -> list[Match]:
    """Phone-like digit groups (7-15 digits), as '+digits' / 'digits'; dates and plain numbers excluded."""
    out = []
    for m in PHONE_RE.finditer(text):
        raw = m.group(0)
        digits = re.sub(r"\D", "", raw)
        if 7 <= len(digits) <= 15 and not re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", raw):
            out.append(Match(("+" if raw.startswith("+") else "") + digits, m.start(), m.end()))
    return out


def normalize_url(url: str) -> str:
    """``https://`` scheme if missing, lower-case host without ``www.``, no fragment, no trailing slash."""
    url = url.strip().rstrip(_TRAILING)
    if not re.match(r"^[a-z][a-z0-9+.-]*://", url, re.IGNORECASE):
        url = "https://" + url
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().removeprefix("www.")
    netloc = host + (f":{parts.port}" if parts.port else "")
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), netloc, path, parts.query, ""))
