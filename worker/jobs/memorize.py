"""Job ``process_batch_chunk`` of the ``memorize`` queue: write one chunk of a batch-memorize run."""

from __future__ import annotations

from typing import Any

from memrelay.worker.context import JobContext


def process_batch_chunk(ctx: JobContext, run_id: str, org_id: str, chunk_index: int, offset: int,
                        mapping: dict[str, Any], rows: list[dict[str, Any]], source: str = "batch",
                        tags: list[str] | None = None) -> dict[str, Any]:
    """Write one chunk of a batch-memorize run (one transaction, one embedding call)."""
    return ctx.services.batches.process_chunk(run_id, org_id, chunk_index, offset, mapping, rows, source=source,
                                              tags=tags)
