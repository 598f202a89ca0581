"""Jobs of the ``memorize`` queue. Each takes ids and plain JSON, calls the engine once, and lets
failures raise so RQ's failed registry sees them."""

from __future__ import annotations

from typing import Any

from memrelay.worker.context import get_engine


def process_batch_chunk(run_id: str, org_id: str, chunk_index: int, offset: int, mapping: dict[str, Any],
                        rows: list[dict[str, Any]], source: str = "batch",
                        tags: list[str] | None = None) -> dict[str, Any]:
    """Write one chunk of a batch-memorize run."""
    return get_engine().memories.batches.process_chunk(run_id, org_id, chunk_index, offset, mapping, rows,
                                                       source=source, tags=tags)


def reconcile_index(org_id: str | None = None) -> dict[str, int]:
    """Index pending memories and apply tombstones (also run at worker start)."""
    from memrelay.engine.memory.index_sync import reconcile

    return reconcile(get_engine(), org_id=org_id)
