"""The ``memrelay`` command: the group, its own small commands, and every command registered in one place
(bottom of this module). Command modules import :mod:`memrelay.cli.support`, never this module."""

from __future__ import annotations

import sys

import click

from memrelay.cli.enrich_command import enrich_command
from memrelay.cli.event_commands import events_group, mappings_group, sources_group
from memrelay.cli.index_commands import check_index_command, reindex_command
from memrelay.cli.mcp_command import mcp_command
from memrelay.cli.secrets_command import secrets_group
from memrelay.cli.support import CliGroup, cli_settings, open_services
from memrelay.cli.sync_command import sync_command
from memrelay.cli.workflow_commands import templates_group, workflows_group
from memrelay.engine.core.settings import Settings


def _settings() -> Settings:
    return cli_settings()


@click.group(cls=CliGroup)
def cli() -> None:
    """memrelay — self-hosted personalization memory gateway."""


@cli.command()
def up() -> None:
    """Start everything: embedded Redis/Milvus Lite if needed, the gateway (gunicorn) and N worker processes."""
    from memrelay.supervise.supervisor import Supervisor

    sys.exit(Supervisor(_settings()).run())


@cli.command()
def serve() -> None:
    """Run only the gateway under gunicorn (the scale-out form; web workers build their app after fork)."""
    from memrelay.supervise.supervisor import run_gateway

    sys.exit(run_gateway(_settings()))


@cli.command()
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--name", default=None, help="Worker name in Redis (default: random).")
@click.option("--grace", "grace_s", type=float, default=15.0, show_default=True,
              help="Seconds a SIGTERM lets the current job finish before it is stopped and requeued.")
def worker(burst: bool, name: str | None, grace_s: float) -> None:
    """Run one worker process on every memrelay queue: it builds its services once and runs each job itself
    (no fork per job). SIGTERM: finish the current job within the grace period (else requeue it), then stop."""
    from memrelay.supervise.supervisor import run_worker_process

    run_worker_process(_settings(), burst=burst, name=name, grace_s=grace_s)


@cli.command()
def migrate() -> None:
    """Apply database migrations."""
    from memrelay.composition import build_services

    s = _settings()
    s.ensure_data_dir()
    build_services(s).migrate()
    click.echo("database is up to date")


@cli.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.option("--org", "org_name", required=True, help="Organisation name (created if new).")
@click.option("--scopes", default="read,write", show_default=True, help="Comma-separated: read,write,admin.")
@click.option("--name", default="", help="A label for the key.")
@click.option("--rate-limit", type=int, default=None, help="Requests per minute for this key.")
@click.option("--entity-types", default=None, help="Department key: only these entity types (comma-separated).")
@click.option("--collections", default=None, help="Department key: only these collections' properties.")
@click.option("--guideline-tags", default=None, help="Department key: only guidelines with these tags.")
def keys_create(org_name: str, scopes: str, name: str, rate_limit: int | None, entity_types: str | None,
                collections: str | None, guideline_tags: str | None) -> None:
    """Create an API key; it is printed once and stored only hashed."""
    from memrelay.engine.core.access import AccessScope

    def split(v: str | None) -> list[str] | None:
        return None if v is None else [x.strip() for x in v.split(",") if x.strip()]

    e = open_services()
    access = AccessScope.of(split(entity_types), split(collections), split(guideline_tags))
    org = e.tenancy.get_or_create_org(org_name)
    plaintext, row = e.tenancy.create_key(org.id, scopes=[x.strip() for x in scopes.split(",") if x.strip()],
                                          name=name, rate_limit_per_minute=rate_limit, access=access)
    click.echo(f"org:    {org.name} ({org.id})\nkey id: {row.id}\nscopes: {','.join(row.scopes)}")
    if access.restricted:
        click.echo(f"access: {access.describe()}")
    click.echo(f"key:    {plaintext}\n(store it now: it cannot be shown again)")


@keys.command("list")
@click.option("--org", "org_name", default=None)
def keys_list(org_name: str | None) -> None:
    """List keys (never their secrets)."""
    from memrelay.engine.core.access import AccessScope

    e = open_services()
    org_id = e.tenancy.org_by_name(org_name).id if org_name else None
    for k, org in e.tenancy.list_keys(org_id):
        state = "revoked" if k.revoked_at else "active"
        dept = f"  [{AccessScope.from_json(k.access).describe()}]" if k.access else ""
        click.echo(f"{k.id}  {org:20}  {k.prefix}…  {','.join(k.scopes):18}  {state}  {k.name}{dept}")


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id."""
    open_services().tenancy.revoke_key(key_id)
    click.echo(f"revoked {key_id}")


@cli.command()
def doctor() -> None:
    """Check each backend and print what is used."""
    from memrelay.cli.doctor import run_doctor

    sys.exit(run_doctor(_settings()))


for _command in (events_group, mappings_group, sources_group, sync_command, reindex_command, check_index_command,
                 templates_group, workflows_group, mcp_command, enrich_command, secrets_group):
    cli.add_command(_command)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
