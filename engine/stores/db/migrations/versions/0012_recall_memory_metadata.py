"""memories carry caller metadata (a JSON object, filtered with operators in smart recall) and an optional
expiry (``expires_at``: hidden from recall after it unless ``includeExpired``)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 14:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('memories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('metadata', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('memories', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
        batch_op.drop_column('metadata')
