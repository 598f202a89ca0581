"""API keys carry a department restriction: entity types, collections and guideline tags they are limited to
(``access``: JSON, NULL = org-wide, as every key before this revision)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 14:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('access', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('access')
