"""Writing inferences as property values: ``source="inference"``, confidence, producer as actor and the cited
evidence (with the superseded value's evidence) in property history — and never over another source's value.
An unknown answer writes nothing, except over an inferred value whose cited evidence no longer holds (a memory
deleted or superseded, a property changed): that value is cleared (``None``), the history row recording what
was lost, so no inferred value stands without its evidence.

A chunk's inferences are applied in one transaction with the bulk write path (rows locked in id order, current
values read once, rows and outbox events flushed with executemany)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from memrelay.engine.core.properties_types import PropertySpec
from memrelay.engine.core.util import utcnow
from memrelay.engine.enrichment.evidence import cite, lost_evidence
from memrelay.engine.enrichment.inference import Inference
from memrelay.engine.stores.db.models import PropertyHistory, PropertyValue, Record
from memrelay.engine.stores.outbox import outbox_row
from memrelay.engine.stores.properties import (
    INFERENCE_SOURCE,
    PendingWrites,
    Provenance,
    apply_coerced,
    load_current,
)

OUTCOMES = ("changed", "unchanged", "unknown", "cleared", "kept_human")


def apply_inferences(s: Session, org_id: str, spec: PropertySpec, schema: dict[str, PropertySpec],
                     inferences: list[Inference], *, mode: str, run_id: str | None = None) -> Counter[str]:
    """Write each known inference (in the caller's transaction); returns counts by outcome.

    ``kept_human``: the current value came from another source and stays. ``unknown``: nothing is written
    (an earlier inferred value stays with its own evidence while that evidence holds). ``cleared``: unknown,
    and the earlier inferred value's evidence is gone, so it is superseded by ``None``."""
    name = spec.propertyName
    counts: Counter[str] = Counter({k: 0 for k in OUTCOMES})
    if not inferences:
        return counts
    ids = sorted({i.record_id for i in inferences})
    records = {r.id: r for r in s.scalars(select(Record).where(
        Record.id.in_(ids), Record.org_id == org_id, Record.deleted_at.is_(None)).order_by(Record.id)
        .with_for_update())}
    sources = {rid: src for rid, src, value in s.execute(select(
        PropertyValue.record_id, PropertyValue.source, PropertyValue.value).where(
        PropertyValue.record_id.in_(ids), PropertyValue.name == name)) if value is not None}
    current = load_current(s, ids, [name])
    previous = _previous(s, [rid for rid, src in sources.items() if src == INFERENCE_SOURCE], name)
    writes = PendingWrites()
    now = utcnow()
    for inf in inferences:
        rec = records.get(inf.record_id)
        if rec is None:
            counts["unknown"] += int(not inf.known)
            continue
        if not inf.known:
            lost = _lost(s, rec.id, sources, previous)
            if lost is None:
                counts["unknown"] += 1
                continue
            counts["cleared"] += 1
        elif sources.get(rec.id, INFERENCE_SOURCE) != INFERENCE_SOURCE:
            counts["kept_human"] += 1
            continue
        evidence = {"producer": inf.producer, "mode": mode, "runId": run_id, **cite(inf.cited),
                    "reasoning": inf.reasoning, "supersedes": previous.get(rec.id)}
        if not inf.known:
            evidence["evidenceLost"] = lost
        prov = Provenance(source=INFERENCE_SOURCE, source_event_id=run_id, source_ts=now, actor=inf.producer,
                          confidence=inf.confidence if inf.known else None, evidence=evidence)
        res = apply_coerced(rec, {name: inf.value}, current.setdefault(rec.id, {}), schema, prov, writes,
                            emit_events=False)
        if name not in res.applied:
            counts["unchanged"] += 1
            continue
        counts["changed"] += int(inf.known)
        writes.outbox.append(outbox_row(org_id, "memory.property.updated",
                                        _event(rec, name, res.applied[name], inf, evidence, res.version)))
    s.flush()
    writes.flush(s)
    return counts


def _lost(s: Session, record_id: str, sources: dict[str, str],
          previous: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """For an unknown answer: what the standing inferred value's evidence lost, or None when there is no
    inferred value or its evidence all holds (then it stays). A value that cited nothing has lost it all."""
    if sources.get(record_id) != INFERENCE_SOURCE or record_id not in previous:
        return None
    cited = previous[record_id]["evidence"]
    lost = lost_evidence(s, cited)
    if any(lost.values()) or not (cited.get("memoryIds") or cited.get("properties")):
        return lost
    return None


def _previous(s: Session, record_ids: list[str], name: str) -> dict[str, dict[str, Any]]:
    """Per record, the inferred value being superseded and the evidence it rested on (its own
    ``supersedes`` dropped, so history never nests)."""
    if not record_ids:
        return {}
    rows = s.execute(select(PropertyHistory.record_id, PropertyHistory.value, PropertyHistory.evidence,
                            PropertyHistory.confidence, PropertyHistory.created_at)
                     .where(PropertyHistory.record_id.in_(record_ids), PropertyHistory.name == name,
                            PropertyHistory.applied.is_(True), PropertyHistory.source == INFERENCE_SOURCE)
                     .order_by(PropertyHistory.id))
    out: dict[str, dict[str, Any]] = {}
    for rid, value, evidence, confidence, created in rows:  # the last row per record wins
        kept = {k: v for k, v in (evidence or {}).items() if k != "supersedes"}
        out[rid] = {"value": value, "confidence": confidence,
                    "inferredAt": created.isoformat() if created else None, "evidence": kept}
    return out


def _event(rec: Record, name: str, change: dict[str, Any], inf: Inference, evidence: dict[str, Any],
           version: int) -> dict[str, Any]:
    """The usual property event (flows that react to property changes see inferred ones too), plus the
    inference's confidence, producer and evidence."""
    return {"recordId": rec.id, "type": rec.entity_type, "version": version, "source": INFERENCE_SOURCE,
            "sourceEventId": evidence.get("runId"), "propertyName": name, **change, "inferred": True,
            "confidence": inf.confidence if inf.known else None, "producer": inf.producer,
            "evidence": {k: evidence[k] for k in ("memoryIds", "properties", "reasoning", "evidenceLost")
                         if k in evidence}}
