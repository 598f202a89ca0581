"""Every table of the one Alembic history on one metadata: import this (not a single table module) when
the whole schema is needed (migrations, autogenerate)."""

from __future__ import annotations

from memrelay.engine.stores.db import models, models_enrichment, models_llm, models_outbound, models_workflows
from memrelay.engine.stores.db.base import Base

TABLE_MODULES = (models, models_llm, models_outbound, models_workflows, models_enrichment)
metadata = Base.metadata
