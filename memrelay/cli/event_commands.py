"""`memrelay events …`, `memrelay sources …` and `memrelay mappings lint` — operator views of the gateway."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from memrelay.engine.stores.event_log import event_to_dict


def _engine():  # type: ignore[no-untyped-def]
    from memrelay.cli.main import _engine as build

    return build()


@click.group("events")
def events_group() -> None:
    """Inspect and replay the inbound event log."""


@events_group.command("list")
@click.option("--failed", is_flag=True, help="Only failed and dead-lettered events.")
@click.option("--status", default=None, help="received|processing|processed|failed|dead")
@click.option("--limit", default=50, show_default=True)
def events_list(failed: bool, status: str | None, limit: int) -> None:
    """Newest events first, across all orgs (operator view)."""
    eng = _engine()
    rows = []
    for st in (["failed", "dead"] if failed else [status]):
        rows += eng.events.list(None, status=st, limit=limit)
    for e in sorted(rows, key=lambda r: r["receivedAt"], reverse=True)[:limit]:
        err = f"  {e['lastError'][:80]}" if e["lastError"] else ""
        click.echo(f"{e['id']}  {e['status']:10} {e['connector']:10} {e['eventType']:28} "
                   f"attempts={e['attempts']}{err}")
    if not rows:
        click.echo("no events")


@events_group.command("show")
@click.argument("event_id")
def events_show(event_id: str) -> None:
    """One event with its payload and last error, as JSON."""
    click.echo(json.dumps(event_to_dict(_engine().events.get(None, event_id), payload=True), indent=2))


@events_group.command("replay")
@click.argument("event_ids", nargs=-1)
@click.option("--failed", is_flag=True, help="Replay every failed and dead-lettered event.")
def events_replay(event_ids: tuple[str, ...], failed: bool) -> None:
    """Put events back in the queue (after fixing a mapping, a credential…)."""
    from memrelay.queue.connection import connect
    from memrelay.queue.enqueue import enqueue_events
    from memrelay.supervise.supervisor import ensure_embedded_services

    eng = _engine()
    ids = list(event_ids)
    if failed:
        ids += [e["id"] for st in ("failed", "dead") for e in eng.events.list(None, status=st, limit=10_000)]
    if not ids:
        raise click.UsageError("give event ids or --failed")
    for eid in ids:
        eng.events.replay(None, eid)
    services = ensure_embedded_services(eng.settings, with_milvus=False)
    try:
        from memrelay.engine.core.settings import load_settings

        settings = load_settings(**({"redis_url": services.env["MEMRELAY_REDIS_URL"]}
                                    if "MEMRELAY_REDIS_URL" in services.env else {}))
        done = enqueue_events(eng, connect(settings), ids)
    finally:
        services.stop()
    click.echo(f"replayed {len(ids)} event(s), {len(done)} enqueued (the rest will be picked up by the sweeper)")


@click.group("mappings")
def mappings_group() -> None:
    """Declarative field mappings."""


@mappings_group.command("lint")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def mappings_lint(files: tuple[Path, ...]) -> None:
    """Validate mapping YAML files; problems are reported with file and line."""
    from memrelay.connectors.mapping import lint_mapping_file

    bad = 0
    for f in files:
        problems = lint_mapping_file(f)
        for p in problems:
            click.echo(str(p))
        bad += bool(problems)
        if not problems:
            click.echo(f"{f}: ok")
    sys.exit(1 if bad else 0)


@click.group("sources")
def sources_group() -> None:
    """Configure webhook sources from the command line."""


@sources_group.command("create")
@click.option("--org", "org_name", required=True)
@click.option("--connector", required=True)
@click.option("--name", default="")
@click.option("--secret", default=None)
@click.option("--mapping", "mapping_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--config", "config_json", default="{}", help="JSON object, e.g. '{\"public_url\": \"https://…\"}'")
def sources_create(org_name: str, connector: str, name: str, secret: str | None, mapping_file: Path | None,
                   config_json: str) -> None:
    """Create a source; prints its webhook path, token and secret once."""
    from memrelay.connectors.base import get_connector
    from memrelay.connectors.mapping import load_mapping_text

    get_connector(connector)
    text = mapping_file.read_text() if mapping_file else None
    if text:
        load_mapping_text(text, path=str(mapping_file))
    eng = _engine()
    org = eng.tenancy.get_or_create_org(org_name)
    out = eng.sources.create(org.id, connector=connector, name=name, secret=secret, config=json.loads(config_json),
                             mapping_yaml=text)
    click.echo(json.dumps(out, indent=2))
