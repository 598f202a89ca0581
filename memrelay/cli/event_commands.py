"""`memrelay events …`, `memrelay sources …` and `memrelay mappings lint` — operator views of the gateway."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from memrelay.cli.support import open_services
from memrelay.engine.stores.event_log import event_to_dict


@click.group("events")
def events_group() -> None:
    """Inspect and replay the inbound event log."""


@events_group.command("list")
@click.option("--failed", is_flag=True, help="Only failed and dead-lettered events.")
@click.option("--status", default=None, help="received|processing|processed|failed|dead")
@click.option("--limit", default=50, show_default=True)
def events_list(failed: bool, status: str | None, limit: int) -> None:
    """Newest events first, across all orgs (operator view)."""
    services = open_services()
    rows = []
    for st in (["failed", "dead"] if failed else [status]):
        rows += services.events.list(None, status=st, limit=limit)
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
    click.echo(json.dumps(event_to_dict(open_services().events.get(None, event_id), payload=True), indent=2))


@events_group.command("replay")
@click.argument("event_ids", nargs=-1)
@click.option("--failed", is_flag=True, help="Replay every failed and dead-lettered event.")
def events_replay(event_ids: tuple[str, ...], failed: bool) -> None:
    """Put events back in the queue (after fixing a mapping, a credential…)."""
    from memrelay.queue.connection import connect
    from memrelay.queue.jobs import enqueue_each
    from memrelay.supervise.supervisor import ensure_embedded_services

    services = open_services()
    ids = list(event_ids)
    if failed:
        ids += [e["id"] for st in ("failed", "dead") for e in services.events.list(None, status=st, limit=10_000)]
    if not ids:
        raise click.UsageError("give event ids or --failed")
    for eid in ids:
        services.events.replay(None, eid)
    embedded = ensure_embedded_services(services.settings, with_milvus=False)
    try:
        from memrelay.engine.core.settings import load_settings

        settings = load_settings(**({"redis_url": embedded.env["MEMRELAY_REDIS_URL"]}
                                    if "MEMRELAY_REDIS_URL" in embedded.env else {}))
        done = enqueue_each(connect(settings), "process_event", ids)
    finally:
        embedded.stop()
    click.echo(f"replayed {len(ids)} event(s), {len(done)} enqueued (the rest will be picked up by the sweeper)")


@click.group("mappings")
def mappings_group() -> None:
    """Declarative field mappings."""


@mappings_group.command("lint")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def mappings_lint(files: tuple[Path, ...]) -> None:
    """Validate mapping YAML files; problems are reported with file and line (warnings do not fail)."""
    from memrelay.connectors.mapping import lint_mapping_file

    bad = 0
    for f in files:
        problems = lint_mapping_file(f)
        for p in problems:
            click.echo(str(p))
        errors = [p for p in problems if p.severity == "error"]
        bad += bool(errors)
        if not errors:
            click.echo(f"{f}: ok")
    sys.exit(1 if bad else 0)


@mappings_group.command("upgrade")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def mappings_upgrade(files: tuple[Path, ...]) -> None:
    """Rewrite version-1 mapping files (``{field}`` templates) as version 2 (``{{ field }}``), in place."""
    import yaml

    from memrelay.connectors.mapping import load_mapping_text
    from memrelay.connectors.mapping_legacy import upgrade_text
    from memrelay.engine.core.errors import ValidationFailed

    failed = 0
    for f in files:
        text = f.read_text(encoding="utf-8")
        try:
            upgraded = upgrade_text(text)
            load_mapping_text(upgraded, path=str(f))
        except (ValueError, ValidationFailed, yaml.YAMLError) as exc:  # not version 1, or does not translate
            click.echo(f"{f}: not upgraded: {exc}")
            failed += 1
            continue
        f.write_text(upgraded, encoding="utf-8")
        click.echo(f"{f}: upgraded to version 2")
    sys.exit(1 if failed else 0)


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
    from memrelay.connectors.mapping import load_mapping_text
    from memrelay.connectors.registry import validate_config

    config = json.loads(config_json)
    validate_config(connector, config)  # NotFound for an unknown connector, ValidationFailed naming bad fields
    text = mapping_file.read_text() if mapping_file else None
    if text:
        load_mapping_text(text, path=str(mapping_file))
    services = open_services()
    org = services.tenancy.get_or_create_org(org_name)
    out = services.sources.create(org.id, connector=connector, name=name, secret=secret, config=config,
                             mapping_yaml=text)
    click.echo(json.dumps(out, indent=2))
