"""``memrelay reindex`` and ``memrelay check-index``: rebuild and verify the Milvus index from SQL.

Registered in :mod:`memrelay.cli.main` with the other commands.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import click

from memrelay.composition import Services, build_services
from memrelay.engine.core.errors import MemrelayError


@contextmanager
def _services(org_name: str | None) -> Iterator[tuple[Services, list[str]]]:
    """Services on the configured stores (reusing `memrelay up`'s Milvus server if it runs) and the orgs."""
    from memrelay.engine.core.settings import load_settings
    from memrelay.supervise.supervisor import ensure_embedded_services

    try:
        settings = load_settings()
        settings.ensure_data_dir()
        embedded = ensure_embedded_services(settings)
        os.environ.update(embedded.env)
        services = build_services(load_settings())
    except MemrelayError as exc:
        raise click.ClickException(exc.message) from None
    try:
        services.migrate()
        orgs = [services.tenancy.org_by_name(org_name).id] if org_name else services.index.org_ids()
        yield services, orgs
    except MemrelayError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    finally:
        services.close()
        embedded.stop()


@click.command("reindex")
@click.option("--org", "org_name", default=None, help="Only this organisation (by name); default: all.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 20000))
def reindex_command(org_name: str | None, batch_size: int) -> None:
    """Re-embed every memory from its SQL text with the configured embedder and rebuild Milvus."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    with _services(org_name) as (services, orgs):
        index = services.index
        console.print(f"embedder: [bold]{index.embedder.name}[/] ({index.embedder.dim}-d), {len(orgs)} org(s)")
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console) as bar:
            for org_id in orgs:
                task = bar.add_task(org_id, total=index.count_memories(org_id))
                result = index.reindex_org(org_id, batch_size=batch_size, progress=partial(bar.advance, task))
                bar.update(task, completed=result["reembedded"],
                           description=f"{org_id}: {result['reembedded']} re-embedded, {result['indexed']} indexed")


@click.command("check-index")
@click.option("--org", "org_name", default=None, help="Only this organisation (by name); default: all.")
@click.option("--repair", is_flag=True, help="Index pending memories, apply tombstones, fix mismatches.")
def check_index_command(org_name: str | None, repair: bool) -> None:
    """Compare SQL memories with the Milvus index; exits 1 if they disagree (and were not repaired)."""
    from rich.console import Console
    from rich.table import Table

    bad = 0
    with _services(org_name) as (services, orgs):
        if repair:
            services.index.reconcile()
        table = Table("status", "memories", "vectors", "pending", "tombstones", "missing", "extra", "stale", "org")
        for org_id in orgs:
            r = services.index.check_org(org_id, repair=repair)
            status = "ok" if r["ok"] else ("repaired" if "repair" in r else "MISMATCH")
            bad += status == "MISMATCH"
            table.add_row(status, *(str(r[k]) for k in ("memories", "vectors", "pending", "tombstones", "missing",
                                                         "extra", "staleEmbedder")), org_id)
        Console(width=max(Console().width, 120)).print(table)
    if bad:
        sys.exit(1)
