"""Bulk structured writes: a rejected item never aborts the others."""

from __future__ import annotations

import pytest

from memrelay.engine.core.errors import NotFound
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.properties import Provenance


@pytest.mark.usefixtures("backend")
def test_a_soft_deleted_record_in_a_batch_is_refused_and_the_rest_is_written(engine):
    org = engine.tenancy.create_org("bulk-deleted").id
    gone = Identifiers(email="gone@x.io")
    engine.records.upsert(org, gone, {"job_title": "CTO"}, Provenance())
    engine.records.soft_delete(org, gone)

    results = engine.records.upsert_many(org, [(gone, {"job_title": "CEO"}, Provenance()),
                                               (Identifiers(email="new@x.io"), {"job_title": "VP"}, Provenance())])

    assert isinstance(results[0], NotFound)
    assert results[1]["created"] is True
    assert engine.records.get(org, Identifiers(email="new@x.io"))["properties"]["job_title"]["value"] == "VP"
