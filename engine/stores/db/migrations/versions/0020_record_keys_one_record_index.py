"""record_keys: drop ``ix_record_keys_record_id``. The unique constraint on (record_id, key_name, key_value) leads
with ``record_id`` and answers every lookup by record (a record's keys, cascading deletes, merges), so the
single-column index only cost one more index entry per key written (issue 16, bulk writes).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 00:30:00
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("record_keys") as batch:
        batch.drop_index("ix_record_keys_record_id")


def downgrade() -> None:
    with op.batch_alter_table("record_keys") as batch:
        batch.create_index("ix_record_keys_record_id", ["record_id"], unique=False)
