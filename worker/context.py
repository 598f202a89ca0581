"""The engine a worker process's jobs use, built once per process from the environment."""

from __future__ import annotations

from memrelay.composition import Services
from memrelay.engine.core.settings import load_settings

_engine: Services | None = None


def get_engine() -> Services:
    global _engine
    if _engine is None:
        _engine = Services(load_settings())
    return _engine


def set_engine(engine: Services | None) -> None:
    """Tests running jobs in-process point them at their own engine."""
    global _engine
    _engine = engine
