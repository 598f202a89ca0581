"""memories.readings: what scoring reads from a memory's text, taken when it is written (issue 16, no first-call
penalty): see ``memrelay.engine.domain.readings``. Nullable; existing memories keep NULL and are read as before.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 22:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("memories") as batch:
        batch.add_column(sa.Column("readings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("memories") as batch:
        batch.drop_column("readings")
