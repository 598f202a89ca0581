"""Department-level access inside an org: what one API key may see and change.

An :class:`AccessScope` narrows a key to some entity types, some collections and/or some guideline tags (a
"support" key: contacts and tickets, the support guidelines). ``None`` on a dimension means "no restriction
there"; an unrestricted scope (every dimension ``None``) behaves exactly as an org-wide key.

The scope of the current call is held in a context variable, bound by the edge that authenticated the caller
(the REST gateway's ``authenticate()``, the MCP tool runner) for the duration of the call, and enforced in the
engine:

* SQL reads and writes of records, their keys, properties, property history, memories, entity types and
  collections are filtered by :mod:`memrelay.engine.stores.access_filter` (SQLAlchemy loader criteria on every
  ORM statement of the session, the documented pattern for row-level tenancy), so an out-of-scope record is
  absent — "not found" — on every read path, including org-wide recall, search, similar/segment, digests'
  linked records and exports; and a write that would create or change an out-of-scope row is refused.
* Guidelines are filtered by tag in :mod:`memrelay.engine.guidance.governance` (list, get, history, routing,
  prompt context).

Per-process caches that hold an org's data (the org vector matrix, the guideline index) are filled under
:func:`unrestricted` and filtered per call, so one department's call never narrows another's cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from memrelay.engine.core.errors import BadRequest, Forbidden

MAX_ITEMS = 50
MAX_NAME = 100


def _clean(values: Iterable[str] | None, what: str, *, lower: bool = True) -> frozenset[str] | None:
    if values is None:
        return None
    out = []
    for v in values:
        if not isinstance(v, str):
            raise BadRequest(f"{what} must be strings", details={"field": what})
        v = v.strip()
        if not v:
            continue
        if len(v) > MAX_NAME:
            raise BadRequest(f"{what}: a name is longer than {MAX_NAME} characters", details={"field": what})
        out.append(v.lower() if lower else v)
    if len(out) > MAX_ITEMS:
        raise BadRequest(f"{what}: at most {MAX_ITEMS} names", details={"field": what})
    if not out:
        raise BadRequest(f"{what} must name at least one value when given (omit it for no restriction)",
                         details={"field": what})
    return frozenset(out)


@dataclass(frozen=True)
class AccessScope:
    """The entity types, collections and guideline tags a key is limited to (``None``: not limited)."""

    entity_types: frozenset[str] | None = None
    collections: frozenset[str] | None = None  # collection names (case-insensitive) or ids
    guideline_tags: frozenset[str] | None = None
    org_id: str = field(default="", compare=False)  # the key's org (set when bound to a caller)
    # filled lazily by the SQL filter for the call this scope is bound to (what its collections cover in its org,
    # the loader criteria built from it): one scope object lives for one request
    _memo: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def of(cls, entity_types: Iterable[str] | None = None, collections: Iterable[str] | None = None,
           guideline_tags: Iterable[str] | None = None) -> AccessScope:
        """A validated scope (names trimmed and lower-cased; 400 for an empty or oversized list)."""
        return cls(_clean(entity_types, "entityTypes"), _clean(collections, "collections"),
                   _clean(guideline_tags, "guidelineTags"))

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> AccessScope:
        """The scope stored on a key row (``None`` or ``{}``: unrestricted)."""
        if not data:
            return UNRESTRICTED

        def one(name: str) -> frozenset[str] | None:
            return frozenset(data[name]) if data.get(name) is not None else None

        return cls(one("entityTypes"), one("collections"), one("guidelineTags"))

    def for_org(self, org_id: str) -> AccessScope:
        """This scope bound to one org (what the SQL filter resolves collections in)."""
        if not self.restricted:
            return UNRESTRICTED
        return AccessScope(self.entity_types, self.collections, self.guideline_tags, org_id)

    def to_json(self) -> dict[str, list[str]] | None:
        if not self.restricted:
            return None
        return {k: sorted(v) for k, v in (("entityTypes", self.entity_types), ("collections", self.collections),
                                          ("guidelineTags", self.guideline_tags)) if v is not None}

    @property
    def restricted(self) -> bool:
        return self.entity_types is not None or self.collections is not None or self.guideline_tags is not None

    @property
    def restricts_records(self) -> bool:
        return self.entity_types is not None or self.collections is not None

    def allows_guideline(self, tags: Iterable[str] | None) -> bool:
        """Readable when the key has no tag restriction or the guideline carries one of its tags (an untagged
        guideline is org-wide: not visible to a tag-restricted key)."""
        if self.guideline_tags is None:
            return True
        return any(t.strip().lower() in self.guideline_tags for t in (tags or ()))

    def allows_collection(self, collection_id: str, name: str, entity_type: str) -> bool:
        """A collection is visible when it is one of the key's collections (if limited) and of one of its
        entity types (if limited)."""
        if self.collections is not None and not ({collection_id.lower(), name.lower()} & self.collections):
            return False
        return self.entity_types is None or entity_type.lower() in self.entity_types

    def may_write_guideline(self, tags: Iterable[str] | None) -> bool:
        """A tag-restricted key writes only guidelines all of whose tags (at least one) are its own."""
        if self.guideline_tags is None:
            return True
        given = [t.strip().lower() for t in (tags or ())]
        return bool(given) and all(t in self.guideline_tags for t in given)

    def within(self, parent: AccessScope) -> bool:
        """Whether this scope is no wider than ``parent`` (a department admin creates only narrower keys)."""
        def sub(mine: frozenset[str] | None, theirs: frozenset[str] | None) -> bool:
            return theirs is None or (mine is not None and mine <= theirs)

        return (sub(self.entity_types, parent.entity_types) and sub(self.collections, parent.collections)
                and sub(self.guideline_tags, parent.guideline_tags))

    def describe(self) -> str:
        return ", ".join(f"{k}={','.join(v)}" for k, v in (self.to_json() or {}).items()) or "unrestricted"


UNRESTRICTED = AccessScope()

_current: ContextVar[AccessScope] = ContextVar("memrelay_access_scope", default=UNRESTRICTED)


def current_access() -> AccessScope:
    """The scope of the call being served (unrestricted outside any authenticated call: workers, CLI)."""
    return _current.get()


@contextmanager
def access_scope(scope: AccessScope) -> Iterator[AccessScope]:
    """Serve the block with ``scope`` (restored afterwards)."""
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


def bind_access(scope: AccessScope) -> None:
    """Bind ``scope`` for the rest of the current request (the gateway resets it when the request ends)."""
    _current.set(scope)


def reset_access() -> None:
    _current.set(UNRESTRICTED)


@contextmanager
def unrestricted() -> Iterator[None]:
    """Run the block org-wide: for process caches shared by every key of an org, filtered per call."""
    with access_scope(UNRESTRICTED):
        yield


def refuse_if_restricted(what: str) -> None:
    """403 for work a department-restricted key may not start (it would run without its scope)."""
    scope = current_access()
    if scope.restricted:
        raise Forbidden(f"a department-restricted key cannot {what}", details={"access": scope.to_json()})
