"""Per-app clients, kept in ``app.extensions['memrelay']``: settings, the process's services and Redis."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from flask import current_app

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings


@dataclass
class AppState:
    settings: Settings
    services: Services
    redis: redis.Redis
    extras: dict[str, object] = field(default_factory=dict)


def state() -> AppState:
    return current_app.extensions["memrelay"]
