"""memories' record index carries ``updated_at`` (issue 16, scoped recall): a scoped recall reads each record's
memory stamp — the count and the latest ``updated_at`` of its memories — in the statement that finds the record.
On ``(org_id, record_id)`` alone, the latest ``updated_at`` was read either row by row from the table or (SQLite's
choice, and PostgreSQL's min/max rewrite) by walking ``ix_memories_org_updated`` backwards through every newer
memory of the whole org until one of the record's came up — a cost that grew with the org, not the record. On
``(org_id, record_id, updated_at)`` both the count and the maximum are read from this index alone (the maximum is
its last entry for the record). Same number of indexes: the old one is a prefix of the new one.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 23:00:00
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_memories_record", table_name="memories")
    op.create_index("ix_memories_record", "memories", ["org_id", "record_id", "updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_memories_record", table_name="memories")
    op.create_index("ix_memories_record", "memories", ["org_id", "record_id"], unique=False)
