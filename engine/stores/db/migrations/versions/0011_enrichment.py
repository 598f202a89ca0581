"""proactive enrichment: evidence of inferred values in property history, enrichment runs and chunks, stale
marks of inferred properties and each org's change-feed cursor

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 13:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table('property_history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evidence', sa.JSON(), nullable=True))
    op.create_table(
        'enrichment_runs',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('org_id', sa.String(40), sa.ForeignKey('orgs.id', ondelete='CASCADE'), nullable=False),
        sa.Column('entity_type', sa.String(100), nullable=False),
        sa.Column('property', sa.String(128), nullable=False),
        sa.Column('mode', sa.String(16), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('query', sa.JSON(), nullable=True),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.Column('chunks_total', sa.Integer(), nullable=False),
        sa.Column('chunks_done', sa.Integer(), nullable=False),
        sa.Column('estimate_usd', sa.Float(), nullable=False),
        sa.Column('cost_usd', sa.Float(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
        sa.Column('finished_at', TS, nullable=True),
    )
    op.create_index('ix_enrichment_runs_org', 'enrichment_runs', ['org_id', 'created_at'])
    op.create_table(
        'enrichment_chunks',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('run_id', sa.String(40), sa.ForeignKey('enrichment_runs.id', ondelete='CASCADE'), nullable=False),
        sa.Column('chunk_index', sa.Integer(), nullable=False),
        sa.Column('record_ids', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('updated_at', TS, nullable=False),
        sa.UniqueConstraint('run_id', 'chunk_index'),
    )
    op.create_table(
        'enrichment_stale',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('org_id', sa.String(40), nullable=False),
        sa.Column('record_id', sa.String(40), sa.ForeignKey('records.id', ondelete='CASCADE'), nullable=False),
        sa.Column('property', sa.String(128), nullable=False),
        sa.Column('policy', sa.String(20), nullable=False),
        sa.Column('reasons', sa.JSON(), nullable=False),
        sa.Column('marks', sa.Integer(), nullable=False),
        sa.Column('marked_at', TS, nullable=False),
        sa.Column('due_at', TS, nullable=True),
        sa.UniqueConstraint('record_id', 'property'),
    )
    op.create_index('ix_enrichment_stale_due', 'enrichment_stale', ['org_id', 'due_at'])
    op.create_table(
        'enrichment_cursors',
        sa.Column('org_id', sa.String(40), primary_key=True),
        sa.Column('memory_ts', TS, nullable=True),
        sa.Column('history_id', BIG, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table('enrichment_cursors')
    op.drop_index('ix_enrichment_stale_due', table_name='enrichment_stale')
    op.drop_table('enrichment_stale')
    op.drop_table('enrichment_chunks')
    op.drop_index('ix_enrichment_runs_org', table_name='enrichment_runs')
    op.drop_table('enrichment_runs')
    with op.batch_alter_table('property_history', schema=None) as batch_op:
        batch_op.drop_column('evidence')
