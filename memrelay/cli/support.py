"""Helpers shared by the CLI command modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from memrelay.engine.core.errors import MemrelayError

if TYPE_CHECKING:
    from memrelay.composition import Engine


def open_engine() -> Engine:
    """An engine on the configured database, migrated to the latest schema (settings errors → exit 1)."""
    from memrelay.composition import Engine
    from memrelay.engine.core.settings import load_settings

    try:
        settings = load_settings()
    except MemrelayError as exc:
        raise click.ClickException(exc.message) from None
    settings.ensure_data_dir()
    engine = Engine(settings)
    engine.migrate()
    return engine
