"""The engine over a `memrelay up` data dir, before `up` starts: to seed what it will find (tests and benches)."""

from __future__ import annotations

from pathlib import Path

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.supervise.supervisor import ensure_admin_key


def open_up_data_dir(data_dir: Path) -> tuple[Services, str]:
    """Services over ``data_dir`` (migrated, with `up`'s admin key) and the id of `up`'s default org. Milvus is left
    on demand and not started, as `up` runs it below the exact-search limit: written memories stay pending for the
    index. The caller closes the services."""
    settings = Settings(data_dir=data_dir, redis_url="redis://unused", log_json=False, log_level="WARNING",
                        milvus_uri="http://127.0.0.1:9", milvus_wanted_file=str(data_dir / "seed.wanted"))
    settings.ensure_data_dir()
    services = Services(settings)
    services.migrate()
    ensure_admin_key(services, settings)
    return services, services.tenancy.get_or_create_org("default").id
