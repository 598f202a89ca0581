"""Helpers shared by the CLI command modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from memrelay.engine.core.errors import MemrelayError

if TYPE_CHECKING:
    from memrelay.composition import Services


def open_engine() -> Services:
    """An engine on the configured database, migrated to the latest schema (settings errors → exit 1)."""
    from memrelay.composition import Services
    from memrelay.engine.core.settings import load_settings

    try:
        settings = load_settings()
    except MemrelayError as exc:
        raise click.ClickException(exc.message) from None
    settings.ensure_data_dir()
    engine = Services(settings)
    engine.migrate()
    return engine
