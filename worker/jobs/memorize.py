"""Job ``process_batch_chunk`` of the ``memorize`` queue: write one chunk of a batch-memorize run."""

from __future__ import annotations

from typing import Any

from memrelay.worker.context import JobContext


def process_batch_chunk(ctx: JobContext, run_id: str, org_id: str, chunk_index: int, *_legacy: Any,
                        **_legacy_kw: Any) -> dict[str, Any]:
    """Write chunk ``chunk_index`` of a batch-memorize run from its rows stored in SQL (one transaction, one
    embedding call), once. Arguments after ``chunk_index`` (the rows themselves, sent by older enqueuers) are
    ignored."""
    return ctx.services.batches.process_chunk(run_id, org_id, chunk_index)
