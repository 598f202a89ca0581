"""Version history rendering shared by versioned objects (collections, guidelines)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from memrelay.engine.core.util import iso


class VersionRow(Protocol):
    version: int
    actor: str | None
    created_at: Any
    snapshot: dict[str, Any]


def render_history(versions: Iterable[VersionRow], *, mode: str,
                   lines_of: Callable[[dict[str, Any]], list[str]]) -> list[dict[str, Any]]:
    """Every version, oldest first: the snapshot (``mode='full'``) or a unified diff against the previous
    version (``mode='diff'``), with the snapshot turned into text lines by ``lines_of``."""
    out: list[dict[str, Any]] = []
    prev: list[str] = []
    for v in versions:
        lines = lines_of(v.snapshot)
        entry: dict[str, Any] = {"version": v.version, "actor": v.actor, "createdAt": iso(v.created_at)}
        if mode == "diff":
            entry["diff"] = "\n".join(difflib.unified_diff(prev, lines, f"v{v.version - 1}", f"v{v.version}",
                                                           lineterm=""))
        else:
            entry["snapshot"] = v.snapshot
        out.append(entry)
        prev = lines
    return out
