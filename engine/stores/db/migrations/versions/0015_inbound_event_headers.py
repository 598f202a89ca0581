"""inbound events keep their delivery's request headers (hop-by-hop dropped, bounded, secrets masked before
storage) and which verification passed (``headers``, ``verification``: JSON, NULL for events stored before)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 15:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('headers', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('verification', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('verification')
        batch_op.drop_column('headers')
