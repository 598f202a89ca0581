"""Pure presentation helpers of the console: secret masking, version diffs, inline SVG bar charts."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

MASK = "•••••• (masked)"
SECRET_NAME = re.compile(r"(?i)(secret|token|passw(or)?d|api[_-]?key|authorization|signature|cookie|"
                         r"session[_-]?id|credential|private[_-]?key|access[_-]?key|client[_-]?secret)")
SECRET_VALUE = re.compile(r"^(whsec_|sk_(live|test)_|rk_(live|test)_|Bearer\s|mr_|pat-)", re.I)


def mask_secrets(value: Any, *, _depth: int = 0) -> Any:
    """A copy of a JSON value with secret-looking fields and values replaced by :data:`MASK`."""
    if _depth > 40:
        return MASK
    if isinstance(value, dict):
        return {k: (MASK if SECRET_NAME.search(str(k)) and v not in (None, "", False)
                    else mask_secrets(v, _depth=_depth + 1)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v, _depth=_depth + 1) for v in value]
    if isinstance(value, str) and SECRET_VALUE.match(value):
        return MASK
    return value


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "del", "hunk", "ctx", "file"
    text: str


def diff_lines(old: str, new: str, *, old_label: str, new_label: str) -> list[DiffLine]:
    """A unified diff (difflib) of two texts, classified line by line for rendering."""
    out = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), old_label, new_label, lineterm="", n=3):
        if line.startswith(("---", "+++")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        out.append(DiffLine(kind, line))
    return out


def snapshot_text(version: dict[str, Any]) -> str:
    """A guideline version as the text the diff compares (fields, then content)."""
    snap = version.get("snapshot") or version
    head = [f"name: {snap.get('name', '')}", f"description: {snap.get('description', '')}",
            f"tags: {', '.join(snap.get('tags') or [])}",
            f"triggerKeywords: {', '.join(snap.get('triggerKeywords') or [])}", ""]
    return "\n".join(head) + str(snap.get("content") or snap.get("value") or "")


def bar_chart(points: Sequence[tuple[str, float]], *, title: str, unit: str = "", width: int = 640,
              height: int = 180) -> Markup:
    """An accessible inline SVG bar chart (``role=img`` with a title and a description listing every value)."""
    pad_l, pad_b, pad_t = 56, 40, 12
    plot_w, plot_h = width - pad_l - 8, height - pad_b - pad_t
    top = max((v for _, v in points), default=0.0) or 1.0
    n = max(len(points), 1)
    bw = max(plot_w / n * 0.7, 1.0)
    desc = "; ".join(f"{label}: {_fmt(v)}{unit}" for label, v in points) or "no data"
    uid = "chart-" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{uid}-t {uid}-d" '
             f'xmlns="http://www.w3.org/2000/svg"><title id="{uid}-t">{escape(title)}</title>'
             f'<desc id="{uid}-d">{escape(desc)}</desc>',
             f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - 8}" y2="{pad_t + plot_h}" class="axis"/>',
             f'<text x="{pad_l - 6}" y="{pad_t + 10}" class="tick" text-anchor="end">{escape(_fmt(top))}</text>',
             f'<text x="{pad_l - 6}" y="{pad_t + plot_h}" class="tick" text-anchor="end">0</text>']
    step = max(1, n // 10)
    for i, (label, v) in enumerate(points):
        h = plot_h * (v / top)
        x = pad_l + i * (plot_w / n) + (plot_w / n - bw) / 2
        parts.append(f'<rect x="{x:.1f}" y="{pad_t + plot_h - h:.1f}" width="{bw:.1f}" height="{h:.1f}" class="bar">'
                     f'<title>{escape(label)}: {escape(_fmt(v))}{escape(unit)}</title></rect>')
        if i % step == 0:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{height - pad_b + 16}" class="tick" '
                         f'text-anchor="middle">{escape(_short(label))}</text>')
    if not points:
        parts.append(f'<text x="{width / 2}" y="{pad_t + plot_h / 2}" class="tick" text-anchor="middle">no data</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _fmt(v: float) -> str:
    if float(v).is_integer() or abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:,.6f}".rstrip("0") if abs(v) < 0.01 else f"{v:,.4g}"


def _short(label: str) -> str:
    """Axis labels: ``MM-DD`` for ISO dates, else the label cut to 12 characters."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", label):
        return label[5:]
    return label if len(label) <= 12 else label[:11] + "…"


def parse_local_time(value: str | None) -> datetime | None:
    """An ``<input type=datetime-local>`` value (taken as UTC) or an ISO timestamp; None when empty or bad."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
