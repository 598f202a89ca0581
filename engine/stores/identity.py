"""Record identity: primary key, secondary keys (email, website_url, record_id, custom keys), resolution.

Each entity type declares the field that is its records' primary key (``primaryKeyField``: ``email``,
``website_url`` or a custom key such as ``dealId``) and the fields records may carry as secondary keys.
Resolution rules (the same for reads and writes, single and bulk):

1. ``record_id: rec_…`` names that record.
2. The *identity key* of a request is the declared primary key when the request carries it, otherwise
   its most specific key (custom keys, then email, then website_url). Records holding that key are the
   answer: one is found, several are ambiguous (409 naming them).
3. Otherwise each other key is tried, most specific first, but a record whose primary key is of the same
   field (and therefore has a *different* value) is never a candidate: a secondary key never merges two
   records with different primary keys. The first key with candidates decides (one, or 409).

Nothing found: 404 naming the keys tried; an unknown entity type: 422 listing the known ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from memrelay.engine.core.emails import clean_email, email_problem
from memrelay.engine.core.errors import BadRequest, Conflict, NotFound, ValidationFailed
from memrelay.engine.stores.access_filter import execute_read, needs_orm
from memrelay.engine.stores.db.driver_select import DriverSelect
from memrelay.engine.stores.db.models import EntityType, Record, RecordKey

ACCEPTED_IDENTIFIERS = ["email", "website_url", "record_id", "customKeyName + customKeyValue", "customKeys"]
MAX_CANDIDATES = 20
MAX_KEY_VALUE = 400  # + key name fits records.primary_key (512); longer identifiers are refused (422)
MAX_KEY_NAME = 64
MAX_CUSTOM_KEYS = 20
CUSTOM = "custom:"


def normalise_email(email: str) -> str:
    """Stored form of an email (NFKC, invisible characters removed, lower-cased; see ``core.emails``)."""
    return clean_email(email)


def normalise_url(url: str) -> str:
    """``https://WWW.Acme.com/`` → ``acme.com``; paths are kept (``acme.com/eu``), scheme dropped."""
    raw = url.strip()
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    path = parts.path.rstrip("/")
    return host + path


def normalise_type(name: str | None) -> str | None:
    """Entity types are case-insensitive: ``Contact`` and ``contact`` are the same type."""
    return name.strip().lower() or None if isinstance(name, str) else name


def key_name_for_field(field: str) -> str:
    """Stored key name of an identifier field: ``email``, ``website_url``, ``record_id`` or ``custom:<field>``."""
    f = field.strip()
    if f.lower() in ("email",):
        return "email"
    if f in ("website_url", "websiteUrl", "website"):
        return "website_url"
    if f in ("record_id", "recordId"):
        return "record_id"
    return f if f.startswith(CUSTOM) else CUSTOM + f


def field_for_key_name(name: str) -> str:
    """The identifier field a stored key name came from (``custom:dealId`` → ``dealId``)."""
    return name.removeprefix(CUSTOM)


class Identifiers(BaseModel):
    """Ways a caller names a record (Personize-compatible field names, snake or camel case)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    type: str | None = Field(None, max_length=100,
                             description="Entity type, e.g. contact, company, deal (case-insensitive).")
    email: str | None = Field(None, max_length=1000, description="Validated and normalised (see core.emails).")
    website_url: str | None = Field(None, alias="websiteUrl", max_length=MAX_KEY_VALUE)
    record_id: str | None = Field(None, alias="recordId", max_length=100)
    customKeyName: str | None = Field(None, max_length=MAX_KEY_NAME)
    customKeyValue: str | None = Field(None, max_length=MAX_KEY_VALUE)
    customKeys: dict[str, str] = Field(default_factory=dict, max_length=MAX_CUSTOM_KEYS)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for alias, name in (("website", "website_url"), ("entityType", "type"), ("entity_type", "type"),
                                ("recordID", "record_id")):
                if alias in data and name not in data:
                    data[name] = data.pop(alias)
        return data

    @field_validator("type")
    @classmethod
    def _type(cls, v: str | None) -> str | None:
        return normalise_type(v)

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        email = clean_email(v)
        if problem := email_problem(email):
            raise ValueError(f"not a valid email address: {problem}")
        return email

    @field_validator("customKeys")
    @classmethod
    def _custom_keys(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            if len(name) > MAX_KEY_NAME or len(str(value)) > MAX_KEY_VALUE:
                raise ValueError(f"custom key names are at most {MAX_KEY_NAME} characters and values at most "
                                 f"{MAX_KEY_VALUE}")
        return v

    def keys(self) -> list[tuple[str, str]]:
        """Normalised (key_name, key_value) pairs, most specific first."""
        out: list[tuple[str, str]] = []
        if self.record_id:
            out.append(("record_id", str(self.record_id).strip()))
        if self.customKeyName and self.customKeyValue:
            out.append((f"{CUSTOM}{self.customKeyName}", str(self.customKeyValue).strip()))
        for k, v in self.customKeys.items():
            if v not in (None, "") and (f"{CUSTOM}{k}", str(v).strip()) not in out:
                out.append((f"{CUSTOM}{k}", str(v).strip()))
        if self.email:
            out.append(("email", normalise_email(self.email)))
        if self.website_url:
            out.append(("website_url", normalise_url(self.website_url)))
        return out

    def inferred_type(self) -> str | None:
        """Without an explicit type: an email names a contact, a bare website a company."""
        if self.email:
            return "contact"
        if self.website_url and not (self.record_id or self.customKeyName or self.customKeys):
            return "company"
        return None

    def require_any(self) -> None:
        if not self.keys():
            raise BadRequest("an identifier is required", details={"accepted": ACCEPTED_IDENTIFIERS})


# --- key policy ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyPolicy:
    """What an entity type declares about identity (stored key names)."""

    primary: str | None = None
    secondary: tuple[str, ...] = ()

    def identity_key(self, keys: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
        """The key that identifies a request's record: the declared primary if carried, else the most specific."""
        usable = [(n, v) for n, v in keys if not _is_record_id(n, v)]
        if self.primary:
            for n, v in usable:
                if n == self.primary:
                    return n, v
        return usable[0] if usable else None


def policy_of(et: EntityType | None) -> KeyPolicy:
    if et is None or not et.primary_key_field:
        return KeyPolicy()
    return KeyPolicy(key_name_for_field(et.primary_key_field),
                     tuple(key_name_for_field(f) for f in (et.secondary_keys or [])))


def key_policy(s: Session, org_id: str, entity_type: str | None) -> KeyPolicy:
    """The declared key policy of an entity type (an empty policy for unknown or undeclared types)."""
    if not entity_type:
        return KeyPolicy()
    return policy_of(s.scalar(select(EntityType).where(EntityType.org_id == org_id,
                                                      EntityType.name == normalise_type(entity_type))))


def primary_key_string(key: tuple[str, str]) -> str:
    return f"{key[0]}:{key[1]}"


def primary_key_name(primary_key: str) -> str:
    """Key name of a stored primary key: ``custom:dealId:D-100`` → ``custom:dealId``."""
    if primary_key.startswith(CUSTOM):
        return CUSTOM + primary_key[len(CUSTOM):].split(":", 1)[0]
    return primary_key.split(":", 1)[0]


# --- resolution ------------------------------------------------------------------------------------
def _is_record_id(name: str, value: str) -> bool:
    return name == "record_id" and value.startswith("rec_")


def ambiguous(name: str, value: str, hits: Sequence[Record]) -> Conflict:
    """409: a key that names several records (never a silent pick)."""
    return Conflict(f"{field_for_key_name(name)} {value!r} matches {len(hits)} records; name one by its "
                    "primary key or record_id",
                    details={"key": field_for_key_name(name), "value": value,
                             "candidates": [{"recordId": h.id, "type": h.entity_type, "primaryKey": h.primary_key}
                                            for h in hits[:MAX_CANDIDATES]]})


Candidates = Callable[[str, str, "str | None"], list[Record]]


def choose(keys: Sequence[tuple[str, str]], policy: KeyPolicy, candidates: Candidates,
           by_id: Callable[[str], Record | None]) -> Record | None:
    """Apply the resolution rules (module docstring) to one request's keys; raises 409 when ambiguous.

    ``candidates(name, value, exclude)`` lists (up to ``MAX_CANDIDATES + 1``) records holding the key,
    leaving out those whose primary key is of the field ``exclude``."""
    identity = policy.identity_key(keys)
    for n, v in keys:
        if _is_record_id(n, v):
            rec = by_id(v)
            if rec is not None and identity is not None and policy.primary and identity[0] == policy.primary \
                    and rec.primary_key.startswith(policy.primary + ":") \
                    and rec.primary_key != primary_key_string(identity):
                raise Conflict(f"record {rec.id} has primary key {rec.primary_key!r}, not "
                               f"{primary_key_string(identity)!r}", details={"recordId": rec.id})
            return rec
    if identity is None:
        return None
    hits = candidates(*identity, None)
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise ambiguous(*identity, hits)
    for n, v in keys:
        if (n, v) == identity:
            continue
        hits = candidates(n, v, identity[0])
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise ambiguous(n, v, hits)
    return None


def _sql_candidates(s: Session, org_id: str, entity_type: str | None,
                    include_deleted: bool) -> Candidates:
    def lookup(name: str, value: str, exclude: str | None) -> list[Record]:
        q = select(Record).join(RecordKey, RecordKey.record_id == Record.id).where(
            RecordKey.org_id == org_id, RecordKey.key_name == name, RecordKey.key_value == value,
            Record.org_id == org_id)
        if exclude:
            q = q.where(~Record.primary_key.startswith(exclude + ":", autoescape=True))
        if entity_type:
            q = q.where(Record.entity_type == entity_type)
        if not include_deleted:
            q = q.where(Record.deleted_at.is_(None))
        return list(s.scalars(q.order_by(Record.created_at, Record.id).limit(MAX_CANDIDATES + 1)))
    return lookup


def _sql_by_id(s: Session, org_id: str, entity_type: str | None,
               include_deleted: bool) -> Callable[[str], Record | None]:
    def get(rid: str) -> Record | None:
        rec = s.get(Record, rid)
        if rec is None or rec.org_id != org_id or (entity_type and rec.entity_type != entity_type):
            return None
        return rec if include_deleted or rec.deleted_at is None else None
    return get


def resolve_record(s: Session, org_id: str, ids: Identifiers, entity_type: str | None, *,
                   include_deleted: bool = False, policy: KeyPolicy | None = None,
                   candidates: Candidates | None = None) -> Record | None:
    """The one record (of ``entity_type`` when given) the identifiers name, or None; 409 when ambiguous.

    ``policy``: the entity type's key policy when the caller already read it (saves reading it again).
    ``candidates``: the key lookup answered from records a batch prefetched (``bulk_write.prefetch_keys``), for
    the same type and deletion filter; SQL otherwise."""
    et = normalise_type(entity_type)
    keys = ids.keys()
    if len(keys) <= 1:
        policy = KeyPolicy()  # one key: it is the identity
    elif policy is None:
        policy = key_policy(s, org_id, et)
    return choose(keys, policy, candidates or _sql_candidates(s, org_id, et, include_deleted),
                  _sql_by_id(s, org_id, et, include_deleted))


def resolve_live_or_deleted(s: Session, org_id: str, ids: Identifiers, entity_type: str, policy: KeyPolicy,
                            *, read: dict[tuple[str, str, str | None], list[Record]] | None = None,
                            ) -> tuple[Record | None, Record | None]:
    """``(live, deleted)``: what :func:`resolve_record` answers for ``ids`` among live records, and — only
    when that is None — among all records including deleted ones, from ONE lookup per key.

    Each key's lookup reads its holders live first (then by creation), so its live rows are exactly the
    live lookup's; when no key has a live holder, every row read is deleted and in the order (and within
    the limit) of the ``include_deleted`` lookup. Both answers therefore equal two separate resolutions.
    ``read`` (optional, filled in) receives each lookup's holders: :func:`keys_held` tells from it which keys
    the answer is known to hold."""
    keys = ids.keys()
    if len(keys) <= 1:
        policy = KeyPolicy()  # one key: it is the identity
    read = {} if read is None else read

    def every(name: str, value: str, exclude: str | None) -> list[Record]:
        if (name, value, exclude) not in read:
            read[(name, value, exclude)] = _holders_live_first(s, org_id, entity_type, name, value, exclude)
        return read[(name, value, exclude)]

    def live(name: str, value: str, exclude: str | None) -> list[Record]:
        return [r for r in every(name, value, exclude) if r.deleted_at is None]

    by_id = _sql_by_id(s, org_id, entity_type, True)
    found = choose(keys, policy, live, lambda rid: (r if (r := by_id(rid)) is not None and r.deleted_at is None
                                                    else None))
    if found is not None:
        return found, None
    return None, choose(keys, policy, every, by_id)


def _holders_live_first(s: Session, org_id: str, entity_type: str, name: str, value: str,
                        exclude: str | None) -> list[Record]:
    q = select(Record).join(RecordKey, RecordKey.record_id == Record.id).where(
        RecordKey.org_id == org_id, RecordKey.key_name == name, RecordKey.key_value == value,
        Record.org_id == org_id, Record.entity_type == entity_type)
    if exclude:
        q = q.where(~Record.primary_key.startswith(exclude + ":", autoescape=True))
    return list(s.scalars(q.order_by(Record.deleted_at.is_not(None), Record.created_at, Record.id)
                          .limit(MAX_CANDIDATES + 1)))


def find_records(s: Session, org_id: str, ids: Identifiers, *, entity_type: str | None = None,
                 include_deleted: bool = False) -> list[Record]:
    """Every record any of the identifiers points at (cross-type unless a type is given)."""
    et = normalise_type(entity_type)
    lookup, get = _sql_candidates(s, org_id, et, include_deleted), _sql_by_id(s, org_id, et, include_deleted)
    found: dict[str, Record] = {}
    for name, value in ids.keys():
        rows = [r for r in [get(value)] if r is not None] if _is_record_id(name, value) else lookup(name, value, None)
        for r in rows:
            found.setdefault(r.id, r)
    return sorted(found.values(), key=lambda r: (r.created_at, r.id))


class Holder(NamedTuple):
    """A record as a scoped read needs it: its id, entity type and the values of the caller's extra columns (no ORM
    object)."""

    id: str
    entity_type: str
    extra: tuple[Any, ...] = ()


def holders(s: Session, org_id: str, ids: Identifiers, entity_types: Sequence[str] | None, *, limit: int,
            columns: tuple[Any, ...] = ()) -> list[Holder]:
    """Every live record (of ``entity_types`` when given) holding the most specific of the identifiers' keys that
    any such record holds — as primary *or* secondary key, so ``website_url: acme.com`` finds the company and the
    contacts, deals and tickets that carry it; ``record_id: rec_…`` names one record. Oldest first, as plain rows:
    one prebuilt statement per key tried (usually one), no ORM objects — the scoped recall's hot path. ``columns``: more column expressions
    of the record (``records`` correlated, e.g. scalar subqueries), read in the same statement into
    :attr:`Holder.extra`; pass the same tuple object on every call (its statements are built once per tuple)."""
    types = [t for t in (normalise_type(t) for t in entity_types or []) if t] or None
    params: dict[str, Any] = {"org": org_id} if types is None else {"org": org_id, "types": types}
    for name, value in ids.keys():
        by_id = _is_record_id(name, value)
        stmt, driver = _holders_statement(by_id, types is not None, columns)
        bound = {**params, "rid": value} if by_id else {**params, "name": name, "value": value, "limit": limit}
        bind = s.get_bind()
        if driver is not None and isinstance(bind, Engine) and not s.in_transaction() and not needs_orm(s):
            rows: Any = driver.rows(bind, bound)
        else:
            rows = execute_read(s, stmt, bound)
        found = [Holder(r[0], r[1], tuple(r[2:])) for r in rows]
        if found or by_id:
            return found
    return []


_HOLDER_STATEMENTS: dict[tuple[bool, bool, int], tuple[Any, DriverSelect | None, tuple[Any, ...]]] = {}


def _holders_statement(by_id: bool, typed: bool, columns: tuple[Any, ...]) -> tuple[Any, DriverSelect | None]:
    """The statement of :func:`holders`, built once per variant and kept (building an ORM select per call cost more
    than the indexed lookup itself), and its :class:`DriverSelect` (None for the typed variant: an expanding IN).
    ORM-enabled, so a department key's access criteria (stores/access_filter.py) apply to it as to any read.
    Without such a scope or pending changes (``needs_orm``), as the first read of its session (a later one must
    share the session's snapshot, a write session's uncommitted rows included), :func:`holders` runs it
    on a driver connection (a warm scoped recall's only statement: a fifth of the session path's cost); later in
    a session, as Core on the session's connection."""
    key = (by_id, typed, id(columns))
    hit = _HOLDER_STATEMENTS.get(key)
    if hit is not None and hit[2] is columns:
        return hit[0], hit[1]
    q = select(Record.id, Record.entity_type, *columns).where(Record.org_id == bindparam("org"),
                                                              Record.deleted_at.is_(None))
    if typed:
        q = q.where(Record.entity_type.in_(bindparam("types", expanding=True)))
    if by_id:
        q = q.where(Record.id == bindparam("rid"))
    else:
        q = (q.join(RecordKey, RecordKey.record_id == Record.id)
             .where(RecordKey.org_id == bindparam("org"), RecordKey.key_name == bindparam("name"),
                    RecordKey.key_value == bindparam("value"))
             .order_by(Record.created_at, Record.id).limit(bindparam("limit")))
    driver = None if typed else DriverSelect(q)
    _HOLDER_STATEMENTS[key] = (q, driver, columns)
    return q, driver


def not_found(s: Session, org_id: str, ids: Identifiers, entity_type: str | None,
              message: str = "no record matches those identifiers") -> NotFound | ValidationFailed:
    """404 naming the keys tried — or 422 listing the known types when the entity type does not exist."""
    et = normalise_type(entity_type)
    if et:
        known = sorted(s.scalars(select(EntityType.name).where(EntityType.org_id == org_id,
                                                              EntityType.archived_at.is_(None))).all())
        if et not in known:
            return ValidationFailed(f"unknown entity type {et!r}", details={"known": known})
    return NotFound(message, details={"type": et, "tried": [{"key": field_for_key_name(n), "value": v}
                                                           for n, v in ids.keys()]})


def require_record(s: Session, org_id: str, ids: Identifiers, entity_type: str | None = None) -> Record:
    """Resolve an existing live record or raise 404/409/422 (never another org's)."""
    ids.require_any()
    et = normalise_type(entity_type) or ids.type
    if et is None and (inferred := ids.inferred_type()):  # an email means a contact, a bare website a company
        rec = resolve_record(s, org_id, ids, inferred)
        if rec is not None:
            return rec
    rec = resolve_record(s, org_id, ids, et)
    if rec is None:
        raise not_found(s, org_id, ids, et)
    return rec


def locate_record(s: Session, org_id: str, ids: Identifiers, entity_type: str | None = None) -> tuple[str, str]:
    """``(record id, entity type)`` of the live record the identifiers name — :func:`require_record` with
    the type inferred from the identifiers (an email means a contact) when none is given."""
    rec = require_record(s, org_id, ids, normalise_type(entity_type) or ids.type or ids.inferred_type())
    return rec.id, rec.entity_type


def claim_primary_key(rec: Record, keys: Sequence[tuple[str, str]], policy: KeyPolicy) -> None:
    """A record found by a secondary key adopts the declared primary key the write carried."""
    identity = policy.identity_key(keys)
    if identity and policy.primary and identity[0] == policy.primary \
            and not rec.primary_key.startswith(policy.primary + ":"):
        rec.primary_key = primary_key_string(identity)[:512]


def keys_held(read: dict[tuple[str, str, str | None], list[Record]], record_id: str) -> set[tuple[str, str]]:
    """The keys whose lookups (as :func:`resolve_live_or_deleted` fills ``read``) returned ``record_id``: rows
    of ``record_keys`` read in this transaction, so the record holds them."""
    return {(name, value) for (name, value, _), rows in read.items() if any(r.id == record_id for r in rows)}


def attach_keys(s: Session, record: Record, keys: list[tuple[str, str]], *, new_record: bool = False,
                held: set[tuple[str, str]] | None = None) -> None:
    """Add the secondary keys a write carried (idempotent). ``new_record``: the record was created in this
    transaction and holds no key yet (nothing to read). ``held``: keys already known (read in this
    transaction) to be the record's; when they cover every key carried, nothing is read."""
    todo = [(n, v) for n, v in keys if not (n == "record_id" and v == record.id)]
    if not new_record and held is not None and all(k in held for k in todo):
        return  # the common case: a write naming its record by the one key it was found by
    existing: set[tuple[str, str]] = set() if new_record else {
        (n, v) for n, v in s.execute(select(RecordKey.key_name, RecordKey.key_value).where(
            RecordKey.record_id == record.id))}
    for name, value in keys:
        if (name, value) not in existing and not (name == "record_id" and value == record.id):
            s.add(RecordKey(org_id=record.org_id, record_id=record.id, key_name=name, key_value=value[:512]))
            existing.add((name, value))


def record_keys(s: Session, record_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Keys of many records, rendered as identifiers."""
    out: dict[str, dict[str, Any]] = {rid: {} for rid in record_ids}
    if not record_ids:
        return out
    for rid, name, value in s.execute(select(RecordKey.record_id, RecordKey.key_name, RecordKey.key_value)
                                      .where(RecordKey.record_id.in_(record_ids))):
        if name.startswith(CUSTOM):
            out[rid].setdefault("customKeys", {})[name[len(CUSTOM):]] = value
        else:
            out[rid].setdefault(name, value)
    return out
