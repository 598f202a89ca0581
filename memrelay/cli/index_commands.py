"""``memrelay reindex`` and ``memrelay check-index``: rebuild and verify the Milvus index from SQL.

Registered in :mod:`memrelay.cli.main` (``cli.add_command(reindex_command)`` etc.).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from memrelay.engine.core.errors import MemrelayError


@contextmanager
def _engine(org_name: str | None) -> Iterator[tuple[Any, list[str]]]:
    """An engine on the configured stores (reusing `memrelay up`'s Milvus server if it runs) and the orgs."""
    from memrelay.composition import Services
    from memrelay.engine.core.settings import load_settings
    from memrelay.engine.memory.index_sync import org_ids
    from memrelay.supervise.supervisor import ensure_embedded_services

    try:
        settings = load_settings()
        settings.ensure_data_dir()
        services = ensure_embedded_services(settings)
        os.environ.update(services.env)
        engine = Services(load_settings())
    except MemrelayError as exc:
        raise click.ClickException(exc.message) from None
    try:
        engine.migrate()
        orgs = [engine.tenancy.org_by_name(org_name).id] if org_name else org_ids(engine)
        yield engine, orgs
    except MemrelayError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    finally:
        engine.close()
        services.stop()


@click.command("reindex")
@click.option("--org", "org_name", default=None, help="Only this organisation (by name); default: all.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 20000))
def reindex_command(org_name: str | None, batch_size: int) -> None:
    """Re-embed every memory from its SQL text with the configured embedder and rebuild Milvus."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from memrelay.engine.memory.index_sync import count_memories, reindex_org

    console = Console(stderr=True)
    with _engine(org_name) as (engine, orgs):
        console.print(f"embedder: [bold]{engine.embedder.name}[/] ({engine.embedder.dim}-d), {len(orgs)} org(s)")
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console) as bar:
            for org_id in orgs:
                task = bar.add_task(org_id, total=count_memories(engine, org_id))
                result = reindex_org(engine, org_id, batch_size=batch_size,
                                     progress=lambda n, t=task: bar.advance(t, n))
                bar.update(task, completed=result["reembedded"],
                           description=f"{org_id}: {result['reembedded']} re-embedded, {result['indexed']} indexed")


@click.command("check-index")
@click.option("--org", "org_name", default=None, help="Only this organisation (by name); default: all.")
@click.option("--repair", is_flag=True, help="Index pending memories, apply tombstones, fix mismatches.")
def check_index_command(org_name: str | None, repair: bool) -> None:
    """Compare SQL memories with the Milvus index; exits 1 if they disagree (and were not repaired)."""
    from rich.console import Console
    from rich.table import Table

    from memrelay.engine.memory.index_sync import check_org, reconcile

    bad = 0
    with _engine(org_name) as (engine, orgs):
        if repair:
            reconcile(engine)
        table = Table("status", "memories", "vectors", "pending", "tombstones", "missing", "extra", "stale", "org")
        for org_id in orgs:
            r = check_org(engine, org_id, repair=repair)
            status = "ok" if r["ok"] else ("repaired" if "repair" in r else "MISMATCH")
            bad += status == "MISMATCH"
            table.add_row(status, *(str(r[k]) for k in ("memories", "vectors", "pending", "tombstones", "missing",
                                                         "extra", "staleEmbedder")), org_id)
        Console(width=max(Console().width, 120)).print(table)
    if bad:
        sys.exit(1)
