"""The engine facade: one object per process holding the SQL store and the domain services."""

from __future__ import annotations

from functools import cached_property

from engine.collections import Collections
from engine.db.database import Database
from engine.settings import Settings
from engine.tenancy import Tenancy
from engine.vector_index import VectorIndex


class Engine:
    """Everything the API or a job does is one call on a service reachable from here."""

    def __init__(self, settings: Settings, db: Database | None = None):
        self.settings = settings
        self.db = db or Database(settings.sql_url)

    @cached_property
    def tenancy(self) -> Tenancy:
        return Tenancy(self.db)

    @cached_property
    def collections(self) -> Collections:
        return Collections(self.db)

    @cached_property
    def vector_index(self) -> VectorIndex:
        return VectorIndex(self.settings.milvus_target)

    def vector_index_status(self) -> dict[str, object]:
        return self.vector_index.ping()

    def migrate(self) -> None:
        from engine.db.migrate import upgrade

        upgrade(self.db.url)

    def close(self) -> None:
        if "vector_index" in self.__dict__:
            self.vector_index.close()
        self.db.dispose()
