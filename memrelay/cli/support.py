"""Helpers shared by the CLI command modules (imported by them and by :mod:`memrelay.cli.main`, never the
other way round)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from memrelay.engine.core.errors import MemrelayError

if TYPE_CHECKING:
    from memrelay.composition import Services
    from memrelay.engine.core.settings import Settings


def cli_settings() -> Settings:
    """The environment's settings; a settings error becomes a clean ``click`` error (exit 1)."""
    from memrelay.engine.core.settings import load_settings

    try:
        return load_settings()
    except MemrelayError as exc:
        raise click.ClickException(exc.message) from None


def open_services() -> Services:
    """The services on the configured database, migrated to the latest schema (settings errors → exit 1)."""
    from memrelay.composition import build_services

    settings = cli_settings()
    settings.ensure_data_dir()
    services = build_services(settings)
    services.migrate()
    return services


class CliGroup(click.Group):
    """A group whose commands' MemrelayErrors print as ``code: message`` (exit 1) instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MemrelayError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message}") from None
