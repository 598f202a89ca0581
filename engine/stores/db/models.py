"""SQLAlchemy models. Every tenant-owned row carries ``org_id``; every query filters on it.

The SQL store is the source of truth for everything, including memory embeddings; Milvus is a
derived index rebuilt from here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from memrelay.engine.stores.db.base import Base, BigId
from memrelay.engine.stores.db.encrypted import EncryptedJSON, EncryptedText


class Org(Base):
    __tablename__ = "orgs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]] = mapped_column(JSON)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # department restriction (engine/core/access.py AccessScope.to_json()); NULL = org-wide (0012)
    access: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class EntityType(Base):
    __tablename__ = "entity_types"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    system: Mapped[bool] = mapped_column(Boolean, default=False)
    archived_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime]
    # identity: the field that is a record's primary key (email, website_url or a custom key such as dealId)
    # and the fields it may also carry as secondary keys; see memrelay.engine.stores.identity
    primary_key_field: Mapped[str | None] = mapped_column(String(100), nullable=True)
    secondary_keys: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    # display metadata (Personize's entity types API): unset label/plural are derived from the name
    label: Mapped[str | None] = mapped_column(String(100), nullable=True)
    plural_label: Mapped[str | None] = mapped_column(String(100), nullable=True)
    icon: Mapped[str | None] = mapped_column(String(100), nullable=True)
    color: Mapped[str | None] = mapped_column(String(40), nullable=True)
    identifier_column: Mapped[str | None] = mapped_column(String(100), nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Collection(Base):
    __tablename__ = "collections"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    entity_type: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    properties: Mapped[list[Any]] = mapped_column(JSON)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    archived_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CollectionVersion(Base):
    __tablename__ = "collection_versions"
    __table_args__ = (UniqueConstraint("collection_id", "version"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(40), index=True)
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime]


class Record(Base):
    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("org_id", "entity_type", "primary_key"),
        Index("ix_records_org_type_deleted", "org_id", "entity_type", "deleted_at"),
        Index("ix_records_deleted", "org_id", "entity_type", "deleted_at",
              sqlite_where=text("deleted_at IS NOT NULL"), postgresql_where=text("deleted_at IS NOT NULL")),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(100))
    primary_key: Mapped[str] = mapped_column(String(512))
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    purge_after: Mapped[datetime | None] = mapped_column(nullable=True)


class RecordKey(Base):
    """A secondary (or the primary) key of a record: email, website_url, record_id, custom keys."""

    __tablename__ = "record_keys"
    __table_args__ = (
        UniqueConstraint("record_id", "key_name", "key_value"),
        Index("ix_record_keys_lookup", "org_id", "key_name", "key_value"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(40))
    # looked up by record through the unique constraint above, which leads with record_id (0020)
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    key_name: Mapped[str] = mapped_column(String(100))
    key_value: Mapped[str] = mapped_column(String(512))


class PropertyValue(Base):
    """Current value of one property on one record, with provenance."""

    __tablename__ = "property_values"
    __table_args__ = (
        UniqueConstraint("record_id", "name"),
        # covering indexes: search resolves record-id sets from these without touching the table (an untyped
        # search reads them once per entity type of the org); the numeric one holds only rows with a number (0016).
        # SQLite only: on PostgreSQL (0018) the same pair is led by a compact key instead of (org_id, entity_type,
        # name) — ix_props_key_text (prop_key, value_text, record_id) and ix_props_key_num (prop_key, value_num,
        # record_id) WHERE value_num IS NOT NULL, on the stored generated column
        # prop_key uuid = md5(org_id || chr(31) || entity_type || chr(31) || name)::uuid, which is not mapped here
        # (the database fills it; search reads it, see search._prop_key)
        Index("ix_props_type_text", "org_id", "entity_type", "name", "value_text", "record_id").ddl_if(dialect="sqlite"),
        Index("ix_props_type_num", "org_id", "entity_type", "name", "value_num", "record_id",
              sqlite_where=text("value_num IS NOT NULL")).ddl_if(dialect="sqlite"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(128))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    value_text: Mapped[str | None] = mapped_column(String(512), nullable=True)
    value_num: Mapped[float | None] = mapped_column(Float, nullable=True)
    source: Mapped[str | None] = mapped_column(String(100), nullable=True)
    source_event_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source_ts: Mapped[datetime | None] = mapped_column(nullable=True)
    actor: Mapped[str | None] = mapped_column(String(100), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime]


class PropertyHistory(Base):
    """Every write attempt on a property, applied or not (older source timestamps are kept here)."""

    __tablename__ = "property_history"
    __table_args__ = (Index("ix_prop_hist", "org_id", "record_id", "name", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    previous: Mapped[Any] = mapped_column(JSON, nullable=True)
    applied: Mapped[bool] = mapped_column(Boolean, default=True)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source: Mapped[str | None] = mapped_column(String(100), nullable=True)
    source_event_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source_ts: Mapped[datetime | None] = mapped_column(nullable=True)
    actor: Mapped[str | None] = mapped_column(String(100), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    evidence: Mapped[Any] = mapped_column(JSON, nullable=True)  # inferred values: what they rest on (0011)
    record_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]


class Memory(Base):
    """A free-text memory about one record; its embedding lives here (the index is derived)."""

    __tablename__ = "memories"
    __table_args__ = (
        Index("ix_memories_record", "org_id", "record_id", "updated_at"),  # covers a record's memory stamp (0017)
        Index("ix_memories_org_updated", "org_id", "updated_at"),
        Index("ix_memories_index_state", "index_state"),
        Index("ix_memories_purge", "purge_after", sqlite_where=text("deleted_at IS NOT NULL"),
              postgresql_where=text("deleted_at IS NOT NULL")),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    speaker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    source: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ts: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    embedder: Mapped[str | None] = mapped_column(String(100), nullable=True)
    topic: Mapped[str | None] = mapped_column(String(100), nullable=True)
    seen_count: Mapped[int] = mapped_column(Integer, default=1)
    provenance: Mapped[list[Any]] = mapped_column(JSON, default=list)
    superseded_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    superseded_at: Mapped[datetime | None] = mapped_column(nullable=True)
    index_state: Mapped[str] = mapped_column(String(16), default="pending")
    # soft delete (POST /memory/delete): hidden everywhere, restorable until purge_after, then purged
    deleted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    purge_after: Mapped[datetime | None] = mapped_column(nullable=True)
    # caller metadata (column "metadata": the attribute name is reserved by SQLAlchemy) and expiry (0012)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # what scoring reads from the text, taken when the memory was written (memrelay.engine.domain.readings; 0019)
    readings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class IndexTombstone(Base):
    """A memory removed from SQL whose vector must still be removed from the index (same transaction)."""

    __tablename__ = "index_tombstones"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(40))
    memory_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]


class IndexMeta(Base):
    """Which embedder built an org's vector index (changing it requires `memrelay reindex`)."""

    __tablename__ = "index_meta"
    org_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    embedder: Mapped[str] = mapped_column(String(100))
    dim: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class OutboxEvent(Base):
    """Typed mutation events written in the same transaction as the mutation."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_org_type", "org_id", "event_type", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    org_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    dispatched_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)


class AuditEntry(Base):
    """Audit trail; erasure entries keep no personal data (only hashed identifiers and counts)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(40), index=True)
    action: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str | None] = mapped_column(String(100), nullable=True)
    actor: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]


class BatchRun(Base):
    """A batch-memorize run: progress, per-row errors and totals."""

    __tablename__ = "batch_runs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    totals: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The run's mapping, source and tags (what every chunk is processed with)."""


class BatchChunk(Base):
    """One chunk of a batch run: its rows until processed, its attempts and state (``queued``, ``running``,
    ``done``, ``failed``). The chunk job's source of truth, so a lost job is re-driven and a chunk counts once."""

    __tablename__ = "batch_chunks"
    __table_args__ = (Index("ix_batch_chunks_status", "status"),)
    run_id: Mapped[str] = mapped_column(ForeignKey("batch_runs.id", ondelete="CASCADE"), primary_key=True)
    chunk_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[str] = mapped_column(String(40))
    row_offset: Mapped[int] = mapped_column(Integer)
    row_count: Mapped[int] = mapped_column(Integer)
    rows: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime]


class BatchRowError(Base):
    """One rejected row of a batch run (a bad row never aborts the run)."""

    __tablename__ = "batch_row_errors"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("batch_runs.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[str] = mapped_column(String(40))
    row_index: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)


class Source(Base):
    """A configured webhook/CRM source: which connector, its secrets, mapping and owning org."""

    __tablename__ = "sources"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    connector: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200), default="")
    # encrypted at rest (engine/core/secretbox.py): signing secrets, the path token and the config (CRM tokens)
    secret: Mapped[str | None] = mapped_column(EncryptedText("sources.secret"), nullable=True)
    previous_secrets: Mapped[list[Any]] = mapped_column(EncryptedJSON("sources.previous_secrets"), default=list)
    token: Mapped[str] = mapped_column(EncryptedText("sources.token", 100))
    config: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("sources.config"), default=dict)
    mapping_yaml: Mapped[str | None] = mapped_column(Text, nullable=True)
    sync_cursor: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class InboundEvent(Base):
    """The event log: every verified delivery, idempotent on the provider's dedup key. The truth, not Redis."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("source_id", "dedup_key"),
        Index("ix_events_status_next", "status", "next_attempt_at"),
        Index("ix_events_org_received", "org_id", "received_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    connector: Mapped[str] = mapped_column(String(40))
    dedup_key: Mapped[str] = mapped_column(String(300))
    event_type: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str | None] = mapped_column(String(60), nullable=True)
    object_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    occurred_at: Mapped[datetime | None] = mapped_column(nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="received")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # the delivery's request headers as stored by EventLog.record (hop-by-hop dropped, ≤ 8 KB, secrets masked)
    # and which verification passed ({connector, scheme, description, verifiedHeaders}); NULL before 0015
    headers: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
