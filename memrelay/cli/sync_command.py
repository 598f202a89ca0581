"""``memrelay sync hubspot|salesforce --source ID [--since DATE]``: backfill a source from its CRM.

Registered in :mod:`memrelay.cli.main` with ``cli.add_command(sync_command)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from memrelay.cli.support import open_services
from memrelay.composition import Services
from memrelay.engine.core.errors import MemrelayError

CONNECTORS = ("hubspot", "salesforce")


def _parse_since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    from memrelay.connectors.timeutil import parse_datetime

    parsed = parse_datetime(value)
    if parsed is None or value.strip().isdigit():
        raise click.BadParameter("use an ISO date or date-time, e.g. 2026-01-31 or 2026-01-31T12:00:00Z")
    return parsed


@click.command("sync")
@click.argument("connector", type=click.Choice(CONNECTORS))
@click.option("--source", "source_id", required=True, help="The source id (src_...).")
@click.option("--since", callback=_parse_since, default=None,
              help="Only records modified at or after this ISO date/time (default: resume an unfinished sync, "
                   "else incremental from the last finished one, else everything).")
@click.option("--full", is_flag=True, help="Ignore the stored cursor and list every record again.")
@click.option("--memories/--no-memories", default=True, show_default=True,
              help="Also write the mapping's memory templates (slower: embeds each record's text).")
@click.option("--object", "object_types", multiple=True,
              help="Object type to sync (repeatable; default: every mapped type), e.g. contact or Account.")
@click.option("--every", "every_s", type=click.IntRange(60), default=None,
              help="Do not sync here: enqueue a repeating RQ job (every N seconds) for the workers.")
def sync_command(connector: str, source_id: str, since: datetime | None, full: bool, memories: bool,
                 object_types: tuple[str, ...], every_s: int | None) -> None:
    """Backfill records (and memories) of a HubSpot or Salesforce source, resumably, with progress."""
    try:
        services = open_services()
    except MemrelayError as exc:
        raise click.ClickException(exc.message) from None
    try:
        src = services.sources.lookup(source_id)
        if src.connector != connector:
            raise click.ClickException(f"source {source_id} is a {src.connector} source, not {connector}")
        if every_s is not None:
            _schedule(services, source_id, every_s, since, memories)
            return
        _run(services, source_id, since=since, full=full, memories=memories, object_types=list(object_types))
    except MemrelayError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    finally:
        services.close()


def _schedule(services: Services, source_id: str, every_s: int, since: datetime | None, memories: bool) -> None:
    from memrelay.queue.connection import connect
    from memrelay.worker.jobs.sync import schedule_sync

    job_id = schedule_sync(connect(services.settings), source_id, every_s=every_s,
                           since=since.isoformat() if since else None, memories=memories)
    click.echo(f"scheduled job {job_id}: sync of {source_id} now and every {every_s}s")


def _run(services: Services, source_id: str, *, since: datetime | None, full: bool, memories: bool,
         object_types: list[str]) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from memrelay.connectors.pager import SyncPage

    console = Console(stderr=True)
    tasks: dict[str, Any] = {}
    with Progress(TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[pages]} pages"), console=console) as bar:

        def progress(page: SyncPage) -> None:
            if page.object_type not in tasks:
                tasks[page.object_type] = bar.add_task(page.object_type, total=page.total, pages=0)
            task = tasks[page.object_type]
            pages = bar.tasks[task].fields["pages"] + 1
            bar.update(task, advance=len(page.records), pages=pages, total=page.total or None)
            if page.done:
                bar.update(task, total=bar.tasks[task].completed)

        try:
            summary = services.backfill.sync_source(source_id, since=since, full=full, memories=memories,
                                  object_types=object_types or None, progress=progress)
        except Exception as exc:
            message = exc.message if isinstance(exc, MemrelayError) else f"{exc.__class__.__name__}: {exc}"
            raise click.ClickException(f"sync stopped: {message}\nThe cursor is saved; run the same command "
                                       "again to resume.") from None
    _print_summary(console, summary)


def _print_summary(console: Any, summary: Any) -> None:
    from rich.table import Table

    table = Table(title=f"{summary.connector} sync of {summary.source_id}", show_header=False)
    since = summary.since or "everything"
    rows = [("since", f"{since}{' (resumed)' if summary.resumed else ''}"), ("pages", summary.pages),
            ("records", summary.records), ("created", summary.created), ("updated", summary.updated),
            ("unchanged", summary.unchanged), ("stale (newer data kept)", summary.stale),
            ("skipped (no key)", summary.skipped), ("errors", summary.errors), ("memories", summary.memories),
            ("time", f"{summary.seconds:.1f}s"), ("rows/s", f"{summary.rows_per_s:.0f}")]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    for sample in summary.error_samples:
        console.print(f"[red]error[/] {sample}")
    if summary.paused:
        console.print(f"[yellow]paused:[/] {summary.paused}; run again later to resume")
    click.echo(f"synced {summary.records} records in {summary.pages} pages "
               f"({summary.created} created, {summary.updated} updated, {summary.stale} stale, "
               f"{summary.errors} errors, {summary.rows_per_s:.0f} rows/s)")
