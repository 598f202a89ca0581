"""entity types declare their records' primary key; existing records re-derive theirs

Adds ``entity_types.primary_key_field`` and ``entity_types.secondary_keys``; the starter types get the
keys of Personize's multi-entity guide (contact: email, company: website_url, deal: dealId, ticket:
ticketId). Every record of a declared type that carries its primary key field gets ``primary_key`` =
that key (before, identity tried email before a custom key, so a deal could be keyed by its contact's
email).

Conflicts are never merged: a record that carries several values of its primary key field (two deals
that identity folded into one) and records that share one value are left as they are and reported —
one ``audit_log`` entry per conflict (``action = identity.primary_key_conflict``) and a warning.

The key rules are frozen here (not imported) so the migration keeps its meaning when the code moves on.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 22:00:00
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
CONFLICT_ACTION = "identity.primary_key_conflict"
DECLARED: dict[str, tuple[str, list[str]]] = {
    "contact": ("email", ["website_url"]),
    "company": ("website_url", []),
    "deal": ("dealId", ["email", "website_url"]),
    "ticket": ("ticketId", ["website_url", "email"]),
}

entity_types = sa.table("entity_types", sa.column("id", sa.String), sa.column("org_id", sa.String),
                        sa.column("name", sa.String), sa.column("primary_key_field", sa.String),
                        sa.column("secondary_keys", sa.JSON))
records = sa.table("records", sa.column("id", sa.String), sa.column("org_id", sa.String),
                   sa.column("entity_type", sa.String), sa.column("primary_key", sa.String))
record_keys = sa.table("record_keys", sa.column("record_id", sa.String), sa.column("org_id", sa.String),
                       sa.column("key_name", sa.String), sa.column("key_value", sa.String))
audit_log = sa.table("audit_log", sa.column("org_id", sa.String), sa.column("action", sa.String),
                     sa.column("subject", sa.String), sa.column("actor", sa.String),
                     sa.column("detail", sa.JSON), sa.column("created_at", sa.DateTime))


def key_name(field: str) -> str:
    if field in ("email", "website_url", "record_id"):
        return field
    return f"custom:{field}"


def upgrade() -> None:
    op.add_column("entity_types", sa.Column("primary_key_field", sa.String(100), nullable=True))
    op.add_column("entity_types", sa.Column("secondary_keys", sa.JSON, nullable=True))
    conn = op.get_bind()
    for name, (primary, secondary) in DECLARED.items():
        conn.execute(entity_types.update().where(entity_types.c.name == name,
                                                 entity_types.c.primary_key_field.is_(None))
                     .values(primary_key_field=primary, secondary_keys=secondary))
    declared = conn.execute(sa.select(entity_types.c.org_id, entity_types.c.name, entity_types.c.primary_key_field)
                            .where(entity_types.c.primary_key_field.is_not(None))
                            .order_by(entity_types.c.org_id, entity_types.c.name)).all()
    changed = conflicts = 0
    for org_id, type_name, field in declared:
        c, n = rederive(conn, org_id, type_name, key_name(field))
        changed, conflicts = changed + c, conflicts + n
    if changed or conflicts:
        log.warning("0007: %d record primary keys re-derived, %d conflicts left unmerged (audit_log action %r)",
                    changed, conflicts, CONFLICT_ACTION)


def rederive(conn: Any, org_id: str, type_name: str, kp: str) -> tuple[int, int]:
    """Re-key one entity type's records by ``kp``; returns (records changed, conflicts reported)."""
    current = dict(conn.execute(sa.select(records.c.id, records.c.primary_key).where(
        records.c.org_id == org_id, records.c.entity_type == type_name)).all())
    values: dict[str, set[str]] = {}
    for rid, value in conn.execute(
            sa.select(record_keys.c.record_id, record_keys.c.key_value)
            .join(records, records.c.id == record_keys.c.record_id)
            .where(records.c.org_id == org_id, records.c.entity_type == type_name, record_keys.c.key_name == kp)
            .order_by(record_keys.c.record_id, record_keys.c.key_value)).all():
        values.setdefault(rid, set()).add(value)
    holders: dict[str, list[str]] = {}
    for rid, vals in values.items():
        for v in vals:
            holders.setdefault(v, []).append(rid)
    taken = set(current.values())
    changed = reported = 0
    blocked: set[str] = set()
    for rid in sorted(values):
        vals = values[rid]
        if len(vals) > 1:
            reported += report(conn, org_id, rid, {
                "reason": "one record carries several primary key values", "entityType": type_name,
                "key": kp.removeprefix("custom:"), "values": sorted(vals), "recordIds": [rid]})
            blocked.add(rid)
    for value, rids in sorted(holders.items()):
        if len(rids) > 1:
            reported += report(conn, org_id, sorted(rids)[0], {
                "reason": "several records share one primary key value", "entityType": type_name,
                "key": kp.removeprefix("custom:"), "values": [value], "recordIds": sorted(rids)})
            blocked.update(rids)
    for rid in sorted(values):
        if rid in blocked:
            continue
        target = f"{kp}:{next(iter(values[rid]))}"[:512]
        if current[rid] == target:
            continue
        if target in taken:
            reported += report(conn, org_id, rid, {
                "reason": "primary key already used by another record", "entityType": type_name,
                "key": kp.removeprefix("custom:"), "values": [target.split(":", 2 if kp.startswith("custom:") else 1)[-1]],
                "recordIds": [rid]})
            continue
        conn.execute(records.update().where(records.c.id == rid).values(primary_key=target))
        taken.discard(current[rid])
        taken.add(target)
        changed += 1
    return changed, reported


def report(conn: Any, org_id: str, subject: str, detail: dict[str, Any]) -> int:
    conn.execute(audit_log.insert().values(org_id=org_id, action=CONFLICT_ACTION, subject=subject,
                                           actor="migration:0007", detail=detail, created_at=datetime.now(UTC)))
    log.warning("0007: %s (%s.%s) on %s", detail["reason"], detail["entityType"], detail["key"],
                ", ".join(detail["recordIds"]))  # values (maybe personal data) only in the audit entry
    return 1


def downgrade() -> None:
    with op.batch_alter_table("entity_types") as batch:
        batch.drop_column("secondary_keys")
        batch.drop_column("primary_key_field")
