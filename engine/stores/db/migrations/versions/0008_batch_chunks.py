"""batch chunks: a batch run's chunks (rows, attempts, state) in SQL, so lost chunk jobs are re-driven

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 11:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('batch_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('params', sa.JSON(), nullable=True))
    op.create_table('batch_chunks',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('chunk_index', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('row_offset', sa.Integer(), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('rows', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['batch_runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'chunk_index')
    )
    with op.batch_alter_table('batch_chunks', schema=None) as batch_op:
        batch_op.create_index('ix_batch_chunks_status', ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('batch_chunks', schema=None) as batch_op:
        batch_op.drop_index('ix_batch_chunks_status')
    op.drop_table('batch_chunks')
    with op.batch_alter_table('batch_runs', schema=None) as batch_op:
        batch_op.drop_column('params')
