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


@pytest.mark.usefixtures("backend")
def test_concurrent_first_writes_of_one_record_both_succeed_on_one_record(engine):
    import threading

    org = engine.tenancy.create_org("race").id
    errors: list[BaseException] = []

    def write(email: str, title: str, start: threading.Barrier) -> None:
        start.wait()
        try:
            engine.records.upsert(org, Identifiers(email=email), {"job_title": title}, Provenance())
        except BaseException as exc:  # noqa: BLE001 - the test reports every failure
            errors.append(exc)

    for i in range(15):
        start = threading.Barrier(2)
        threads = [threading.Thread(target=write, args=(f"race{i}@x.io", t, start)) for t in ("A", "B")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == []
    for i in range(15):
        rec = engine.records.get(org, Identifiers(email=f"race{i}@x.io"))
        assert rec["properties"]["job_title"]["value"] in ("A", "B")
