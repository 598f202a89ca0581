"""CRM backfill orchestration, engine-free: pagers over the CRM APIs, a resumable cursor, the page loop.

The caller (``memrelay.engine.ingest.backfill``) supplies ``write_page`` (map + bulk write, one transaction per page) and
``save_cursor`` (persist after every written page). The stored cursor (``Source.sync_cursor``)::

    {"run": {"since": iso | null, "startedAt": iso,
             "objects": {"contact": {"done": false, "state": {"after": "200", ...}}}},
     "lastRun": {"since": ..., "startedAt": ..., "finishedAt": ..., "records": 250}}

``run`` exists only while a sync is unfinished (failed, interrupted or paused for API limits); the next
sync with the same (or no) ``since`` resumes it at the first unwritten page. Without ``since`` and with no
unfinished run, a sync is incremental from the last finished run's start (minus an overlap); ``full``
lists everything again. Re-reading a page is harmless: writes are idempotent and provenance-checked.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from memrelay.connectors.mapping import MappingSpec
from memrelay.connectors.pager import Pager, SyncPage
from memrelay.connectors.timeutil import parse_datetime, utcnow
from memrelay.engine.core.errors import BadRequest

INCREMENTAL_OVERLAP = timedelta(minutes=5)
"""An incremental sync starts this long before the previous run started (clock skew, late commits)."""
MAX_ERROR_SAMPLES = 20


@dataclass
class PageResult:
    """What writing one page did. ``created``/``updated``/``unchanged`` partition the written records;
    ``stale`` counts records where at least one property kept newer data; ``errors`` are short messages
    for records that were rejected."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    skipped: int = 0
    memories: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class SyncSummary:
    connector: str
    source_id: str
    since: str | None = None
    resumed: bool = False
    pages: int = 0
    records: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    skipped: int = 0
    errors: int = 0
    memories: int = 0
    seconds: float = 0.0
    paused: str | None = None
    error_samples: list[str] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def add(self, page: SyncPage, result: PageResult) -> None:
        self.pages += 1
        self.records += len(page.records)
        for name in ("created", "updated", "unchanged", "stale", "skipped", "memories"):
            setattr(self, name, getattr(self, name) + getattr(result, name))
        self.errors += len(result.errors)
        room = MAX_ERROR_SAMPLES - len(self.error_samples)
        self.error_samples += [f"{page.object_type}: {e}" for e in result.errors[:max(0, room)]]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 3), "rowsPerSecond": round(self.rows_per_s, 1)}


def build_pager(connector: str, options: Mapping[str, Any], mapping: MappingSpec,
                object_types: list[str] | None = None, *, sleep: Callable[[float], None] = time.sleep) -> Pager:
    """The pager for a source; object types default to ``options["sync_objects"]``, else every object
    the mapping maps that the API supports."""
    wanted = object_types or list(options.get("sync_objects") or [])
    # The CRM SDKs (~12 MB per process with what they import) load only in a process that syncs.
    if connector == "hubspot":
        from memrelay.connectors.hubspot import api as hubspot_api
        from memrelay.connectors.hubspot.pager import HubSpotPager

        types = wanted or [t for t in mapping.objects if t in hubspot_api.OBJECT_APIS]
        _check_types(types, hubspot_api.OBJECT_APIS, connector)
        return HubSpotPager(hubspot_api.HubSpotApi(options, sleep=sleep), mapping, types)
    if connector == "salesforce":
        from memrelay.connectors.salesforce import api as salesforce_api
        from memrelay.connectors.salesforce.pager import SalesforcePager

        types = wanted or list(mapping.objects)
        sf = salesforce_api.SalesforceApi(options, sleep=sleep)
        return SalesforcePager(sf, mapping, types, bulk=bool(options.get("bulk")))
    raise BadRequest(f"connector {connector!r} has no CRM sync (hubspot, salesforce)")


def _check_types(types: list[str], supported: Mapping[str, Any], connector: str) -> None:
    unknown = sorted(set(types) - set(supported))
    if unknown or not types:
        raise BadRequest(f"cannot sync {connector} object types {unknown or types}",
                         details={"supported": sorted(supported)})


# -- the loop ---------------------------------------------------------------------------------------


def plan_run(cursor: Mapping[str, Any], *, since: datetime | None, full: bool, object_types: list[str],
             now: datetime) -> tuple[dict[str, Any], bool]:
    """The run to execute and whether it resumes an unfinished one (see the module docstring)."""
    run = cursor.get("run")
    wanted = since.isoformat() if since else None
    if run and not full and (since is None or run.get("since") == wanted):
        objects = {t: run.get("objects", {}).get(t, {"done": False, "state": {}}) for t in object_types}
        return {**run, "objects": objects}, True
    if since is None and not full and (last := (cursor.get("lastRun") or {}).get("startedAt")):
        started = parse_datetime(last)
        wanted = (started - INCREMENTAL_OVERLAP).isoformat() if started else None
    return {"since": wanted, "startedAt": now.isoformat(),
            "objects": {t: {"done": False, "state": {}} for t in object_types}}, False


def run_sync(pager: Pager, *, source_id: str, cursor: Mapping[str, Any],
             save_cursor: Callable[[dict[str, Any]], None], write_page: Callable[[SyncPage], PageResult],
             since: datetime | None = None, full: bool = False,
             progress: Callable[[SyncPage], None] | None = None,
             clock: Callable[[], float] = time.perf_counter) -> SyncSummary:
    """Page through every object type, writing and saving the cursor after each page.

    Raises whatever a page fetch or write raises (the cursor then points at the failed page); stops early,
    cursor saved, when the pager reports an API-limit pause (``summary.paused``)."""
    start = clock()
    run, resumed = plan_run(cursor, since=since, full=full, object_types=pager.object_types, now=utcnow())
    summary = SyncSummary(pager.connector, source_id, since=run["since"], resumed=resumed)
    run_since = parse_datetime(run["since"])
    stored: dict[str, Any] = {k: v for k, v in cursor.items() if k != "run"}

    def save() -> None:
        save_cursor(copy.deepcopy({**stored, "run": run}))

    save()
    try:
        for object_type in pager.object_types:
            entry = run["objects"][object_type]
            if entry.get("done"):
                continue
            for page in pager.pages(object_type, entry.get("state") or {}, run_since):
                summary.add(page, write_page(page) if page.records else PageResult())
                run["objects"][object_type] = {"done": page.done, "state": page.state}
                save()
                if progress is not None:
                    progress(page)
                if (reason := pager.pause_reason()) is not None:
                    summary.paused = reason
                    return summary
        stored["lastRun"] = {"since": run["since"], "startedAt": run["startedAt"], "finishedAt": utcnow().isoformat(),
                             "records": summary.records}
        save_cursor(copy.deepcopy(stored))
        return summary
    finally:
        summary.seconds = clock() - start
