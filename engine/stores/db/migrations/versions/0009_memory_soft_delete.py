"""memories can be soft-deleted: ``POST /memory/delete`` hides them, ``/memory/cancel-deletion`` restores
them until ``purge_after``, the retention purge removes them after that

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 12:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('memories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('purge_after', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_memories_purge', 'memories', ['purge_after'], unique=False,
                    sqlite_where=sa.text('deleted_at IS NOT NULL'),
                    postgresql_where=sa.text('deleted_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_memories_purge', table_name='memories',
                  sqlite_where=sa.text('deleted_at IS NOT NULL'),
                  postgresql_where=sa.text('deleted_at IS NOT NULL'))
    with op.batch_alter_table('memories', schema=None) as batch_op:
        batch_op.drop_column('purge_after')
        batch_op.drop_column('deleted_at')
