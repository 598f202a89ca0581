"""What a CRM backfill pager yields (:class:`SyncPage`) and what it is (:class:`Pager`); the pagers live with
their connectors (``connectors/hubspot/pager.py``, ``connectors/salesforce/pager.py``) and
:func:`memrelay.connectors.sync.build_pager` chooses one."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class SyncPage:
    """Records of one object type and the object's cursor state once they are written."""

    object_type: str
    records: list[dict[str, Any]]
    state: dict[str, Any]
    done: bool
    total: int | None = None


class Pager(Protocol):
    """Pages of one CRM; ``state`` is what a previous page's :class:`SyncPage` carried (``{}`` to start)."""

    connector: str
    object_types: list[str]

    def pages(self, object_type: str, state: Mapping[str, Any], since: datetime | None) -> Iterator[SyncPage]: ...

    def record_time(self, record: Mapping[str, Any]) -> datetime | None: ...

    def pause_reason(self) -> str | None: ...
