"""The answer of Personize's ``recall`` (``POST /api/v1/recall``, v1.1 ``memory.manage.get``): a direct lookup
of one record, no AI and no vector search.

Documented shape: ``memories`` are the record's structured properties, ``freeformMemories`` its memories,
``memoryCount`` / ``freeformMemoryCount`` their counts, ``recordId``, ``type`` and ``systemIntro`` (a
pre-formatted context string). memrelay's own keys of a rendered record (``keys``, ``properties`` with
provenance, ``primaryKey``, ``version``, timestamps) are kept alongside.
"""

from __future__ import annotations

import json
from typing import Any

INTRO_MEMORIES = 20  # memories quoted in systemIntro (all of them are in freeformMemories)


def property_text(value: Any) -> str:
    """A property value as text (Personize's digest ``properties`` map name → string): lists joined by
    commas, objects as JSON."""
    if isinstance(value, list):
        return ", ".join(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str) for v in value)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def structured_memories(rendered: dict[str, Any], documented: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The record's properties as Personize's ``memories`` list: one entry per property (keys included, as
    search's ``records`` shows them), with the collection that defines it and memrelay's provenance."""
    provenance = rendered.get("properties") or {}
    out = []
    for name, cell in sorted(documented.items()):
        prov = provenance.get(name) or {}
        out.append({"propertyName": name, "propertyValue": cell["value"], "value": cell["value"],
                    "collectionId": cell.get("collectionId"), "collectionName": cell.get("collectionName"),
                    **{k: prov[k] for k in ("source", "confidence", "version", "updatedAt") if k in prov}})
    return out


def system_intro(rendered: dict[str, Any], properties: list[dict[str, Any]],
                 freeform: list[dict[str, Any]]) -> str:
    """A plain-text context block: who the record is, its properties, its most recent memories."""
    keys = ", ".join(f"{k}: {v}" for k, v in (rendered.get("keys") or {}).items() if not isinstance(v, dict))
    lines = [f"{rendered.get('type') or 'record'} {rendered['recordId']}"
             + (f" ({keys})" if keys else "")]
    shown = [p for p in properties if p["propertyValue"] not in (None, "", [])]
    if shown:
        lines += ["", "Properties:"] + [f"- {p['propertyName']}: {property_text(p['propertyValue'])}" for p in shown]
    if freeform:
        lines += ["", "Memories:"] + [f"- {m['text']}" for m in freeform[:INTRO_MEMORIES]]
    return "\n".join(lines)


def lookup_answer(rendered: dict[str, Any], documented: dict[str, dict[str, Any]],
                  freeform: list[dict[str, Any]]) -> dict[str, Any]:
    """Personize's recall answer over memrelay's rendered record (documented keys win on a clash)."""
    properties = structured_memories(rendered, documented)
    return {**rendered, "record_id": rendered["recordId"], "memories": properties, "memoryCount": len(properties),
            "freeformMemories": [{"id": m["memoryId"], **m} for m in freeform], "freeformMemoryCount": len(freeform),
            "systemIntro": system_intro(rendered, properties, freeform)}
