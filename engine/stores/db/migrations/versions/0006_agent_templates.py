"""agent specs in the shared template language

Agents used to fill only ``{{name}}`` (one identifier) and kept any other ``{{`` as literal text. In the
shared template language (``memrelay.engine.domain.templates``) every ``{{`` starts an expression, so
stored specs whose text contains such a literal ``{{`` are rewritten with it escaped as ``{{ "{{" }}``.
Specs that only use ``{{name}}`` variables mean the same in both and are left untouched.

The translation is frozen here (not imported) so the migration keeps its meaning when the code moves on.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:00:00
"""
from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

LEGACY_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
LITERAL_OPEN = '{{ "{{" }}'
LITERAL_BRACE = '{{ "{" }}'

agents = sa.table("agents", sa.column("id", sa.String), sa.column("spec", sa.JSON))


def translate(text: str) -> str:
    """A legacy agent template in the template language (unchanged when it already means the same)."""
    pieces: list[tuple[bool, str]] = []
    pos = 0
    for m in LEGACY_VARIABLE.finditer(text):
        pieces += [(False, text[pos:m.start()]), (True, m.group(1))]
        pos = m.end()
    pieces.append((False, text[pos:]))
    ambiguous = any(not var and ("{{" in part or (part.endswith("{") and i + 1 < len(pieces)))
                    for i, (var, part) in enumerate(pieces))
    if not ambiguous:
        return text
    out = ""
    for i, (var, part) in enumerate(pieces):
        if var:
            out += "{{ " + part + " }}"
            continue
        part = part.replace("{{", LITERAL_OPEN)
        if part.endswith("{") and i + 1 < len(pieces):
            part = part[:-1] + LITERAL_BRACE
        out += part
    return out


def untranslate(text: str) -> str:
    return text.replace(LITERAL_OPEN, "{{").replace(LITERAL_BRACE, "{")


def _walk(value: Any, change: Any) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: _walk(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, change) for v in value]
    return value


def _rewrite(change: Any) -> None:
    conn = op.get_bind()
    for agent_id, spec in conn.execute(sa.select(agents.c.id, agents.c.spec)).all():
        new = _walk(spec, change)
        if new != spec:
            conn.execute(agents.update().where(agents.c.id == agent_id).values(spec=new))


def upgrade() -> None:
    _rewrite(translate)


def downgrade() -> None:
    _rewrite(untranslate)
