"""Delivery channels: which named outputs each one needs and the limits they must respect.

``violations(channel, outputs)`` is deterministic; generation feeds the violations back to the model and
regenerates (a bounded number of times) until the outputs comply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Channel = Literal["email", "sms", "push", "slack", "in_app"]
CHANNELS: tuple[str, ...] = ("email", "sms", "push", "slack", "in_app")

_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_MARKDOWN = re.compile(r"(\*\*|__|^#{1,6}\s|^\s*[-*]\s|\[[^\]]+\]\([^)]+\))", re.MULTILINE)


@dataclass(frozen=True)
class FieldRule:
    name: str
    description: str
    max_chars: int | None = None
    max_words: int | None = None
    fmt: Literal["plain", "html", "markdown"] = "plain"
    single_line: bool = False


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    fields: tuple[FieldRule, ...]

    def instructions(self) -> str:
        """The channel's rules, phrased for the model."""
        lines = [f"Channel: {self.name}. Produce these fields:"]
        for f in self.fields:
            limits = [f"at most {f.max_chars} characters" if f.max_chars else "",
                      f"at most {f.max_words} words" if f.max_words else "",
                      {"plain": "plain text (no HTML, no markdown)", "html": "valid HTML markup",
                       "markdown": "Slack markdown"}[f.fmt], "one line" if f.single_line else ""]
            lines.append(f"- {f.name}: {f.description} ({', '.join(x for x in limits if x)})")
        return "\n".join(lines)


CHANNEL_SPECS: dict[str, ChannelSpec] = {
    "email": ChannelSpec("email", (
        FieldRule("subject", "the email subject line", max_chars=80, single_line=True),
        FieldRule("body_html", "the email body as HTML", fmt="html"),
        FieldRule("body_text", "the same body as a plain-text fallback"),
    )),
    "sms": ChannelSpec("sms", (FieldRule("text", "the SMS message", max_chars=160),)),
    "push": ChannelSpec("push", (
        FieldRule("title", "the push notification title", max_chars=50, single_line=True),
        FieldRule("body", "the push notification body", max_chars=100),
    )),
    "slack": ChannelSpec("slack", (FieldRule("text", "the Slack message", max_words=150, fmt="markdown"),)),
    "in_app": ChannelSpec("in_app", (
        FieldRule("title", "the in-app message title", max_chars=60, single_line=True),
        FieldRule("body", "the in-app message body", max_chars=280),
    )),
}


def field_violations(rule: FieldRule, value: str) -> list[str]:
    out: list[str] = []
    if not value.strip():
        return [f"{rule.name} is empty"]
    if rule.max_chars is not None and len(value) > rule.max_chars:
        out.append(f"{rule.name} has {len(value)} characters; the limit is {rule.max_chars}")
    words = len(value.split())
    if rule.max_words is not None and words > rule.max_words:
        out.append(f"{rule.name} has {words} words; the limit is {rule.max_words}")
    if rule.fmt == "html" and not _HTML_TAG.search(value):
        out.append(f"{rule.name} must be HTML markup")
    if rule.fmt == "plain" and _HTML_TAG.search(value):
        out.append(f"{rule.name} must be plain text without HTML tags")
    if rule.fmt == "plain" and rule.single_line and _MARKDOWN.search(value):
        out.append(f"{rule.name} must be plain text without markdown")
    if rule.single_line and "\n" in value.strip():
        out.append(f"{rule.name} must be a single line")
    return out


def violations(channel: str | None, outputs: dict[str, str]) -> list[str]:
    """Every way ``outputs`` break ``channel``'s rules (empty when compliant or no channel)."""
    if channel is None:
        return []
    spec = CHANNEL_SPECS[channel]
    out: list[str] = []
    for rule in spec.fields:
        if rule.name not in outputs:
            out.append(f"{rule.name} is missing")
        else:
            out += field_violations(rule, str(outputs[rule.name]))
    return out
