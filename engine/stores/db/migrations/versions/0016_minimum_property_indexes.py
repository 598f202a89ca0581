"""property_values keeps the indexes search reads (issue 16): one covering text index and one partial numeric
index, both led by the entity type. The untyped copies (``ix_props_text``, ``ix_props_num``) go: an untyped
search reads the typed index once per entity type of the org. ``ix_props_type_num`` holds only rows that have a
number (numbers, dates, booleans): every comparison on ``value_num`` implies ``value_num IS NOT NULL``, so text
values no longer pay for an entry they can never match.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_HAS_NUMBER = sa.text("value_num IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_props_text", table_name="property_values")
    op.drop_index("ix_props_num", table_name="property_values")
    op.drop_index("ix_props_type_num", table_name="property_values")
    op.create_index(
        "ix_props_type_num",
        "property_values",
        ["org_id", "entity_type", "name", "value_num", "record_id"],
        unique=False,
        sqlite_where=_HAS_NUMBER,
        postgresql_where=_HAS_NUMBER,
    )


def downgrade() -> None:
    op.drop_index("ix_props_type_num", table_name="property_values")
    op.create_index(
        "ix_props_type_num",
        "property_values",
        ["org_id", "entity_type", "name", "value_num", "record_id"],
        unique=False,
    )
    op.create_index(
        "ix_props_num", "property_values", ["org_id", "name", "value_num", "record_id"], unique=False
    )
    op.create_index(
        "ix_props_text", "property_values", ["org_id", "name", "value_text", "record_id"], unique=False
    )
