"""Per-app clients, kept in ``app.extensions['memrelay']``: settings, the process's services and Redis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis
from flask import current_app

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings

if TYPE_CHECKING:
    from memrelay.warmup import WarmReport


@dataclass
class AppState:
    settings: Settings
    services: Services
    redis: redis.Redis
    extras: dict[str, object] = field(default_factory=dict)
    warm: WarmReport | None = None
    """Set by :func:`memrelay.gateway.app.warm_app` (gunicorn workers warm before serving); None: not warmed."""


def state() -> AppState:
    return current_app.extensions["memrelay"]
