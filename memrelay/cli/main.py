"""The ``memrelay`` command."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from memrelay.engine.core.errors import MemrelayError
from memrelay.engine.core.settings import Settings, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except MemrelayError as exc:
        raise click.ClickException(exc.message) from None


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MemrelayError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message}") from None


@click.group(cls=_Group)
def cli() -> None:
    """memrelay — self-hosted personalization memory gateway."""


@cli.command()
def up() -> None:
    """Start everything: embedded Redis/Milvus Lite if needed, the gateway (gunicorn) and RQ workers."""
    from memrelay.supervise.supervisor import Supervisor

    sys.exit(Supervisor(_settings()).run())


@cli.command()
def serve() -> None:
    """Run only the gateway under gunicorn (the scale-out form)."""
    from memrelay.supervise.supervisor import ensure_embedded_services, gunicorn_command

    s = _settings()
    s.ensure_data_dir()
    services = ensure_embedded_services(s)
    env = {**os.environ, **services.env}
    import subprocess

    try:
        proc = subprocess.Popen(gunicorn_command(s), env=env)
        sys.exit(proc.wait())
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
    finally:
        services.stop()


@cli.command()
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
def worker(burst: bool) -> None:
    """Run one RQ worker on every memrelay queue."""
    from memrelay.supervise.supervisor import ensure_embedded_services
    from memrelay.worker.main import run_worker

    s = _settings()
    services = ensure_embedded_services(s)
    os.environ.update(services.env)
    try:
        run_worker(load_settings(), burst=burst)
    finally:
        services.stop()


@cli.command()
def migrate() -> None:
    """Apply database migrations."""
    from memrelay.composition import Services

    s = _settings()
    s.ensure_data_dir()
    Services(s).migrate()
    click.echo("database is up to date")


@cli.group()
def keys() -> None:
    """Manage API keys."""


def _engine():  # type: ignore[no-untyped-def]
    from memrelay.cli.support import open_engine

    return open_engine()


@keys.command("create")
@click.option("--org", "org_name", required=True, help="Organisation name (created if new).")
@click.option("--scopes", default="read,write", show_default=True, help="Comma-separated: read,write,admin.")
@click.option("--name", default="", help="A label for the key.")
@click.option("--rate-limit", type=int, default=None, help="Requests per minute for this key.")
def keys_create(org_name: str, scopes: str, name: str, rate_limit: int | None) -> None:
    """Create an API key; it is printed once and stored only hashed."""
    e = _engine()
    org = e.tenancy.get_or_create_org(org_name)
    plaintext, row = e.tenancy.create_key(org.id, scopes=[x.strip() for x in scopes.split(",") if x.strip()],
                                          name=name, rate_limit_per_minute=rate_limit)
    click.echo(f"org:    {org.name} ({org.id})\nkey id: {row.id}\nscopes: {','.join(row.scopes)}")
    click.echo(f"key:    {plaintext}\n(store it now: it cannot be shown again)")


@keys.command("list")
@click.option("--org", "org_name", default=None)
def keys_list(org_name: str | None) -> None:
    """List keys (never their secrets)."""
    e = _engine()
    org_id = e.tenancy.org_by_name(org_name).id if org_name else None
    for k, org in e.tenancy.list_keys(org_id):
        state = "revoked" if k.revoked_at else "active"
        click.echo(f"{k.id}  {org:20}  {k.prefix}…  {','.join(k.scopes):18}  {state}  {k.name}")


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id."""
    _engine().tenancy.revoke_key(key_id)
    click.echo(f"revoked {key_id}")


@cli.command()
def doctor() -> None:
    """Check each backend and print what is used."""
    from memrelay.cli.doctor import run_doctor

    sys.exit(run_doctor(_settings()))


def _register() -> None:
    from memrelay.cli.event_commands import events_group, mappings_group, sources_group
    from memrelay.cli.index_commands import check_index_command, reindex_command
    from memrelay.cli.workflow_commands import templates_group, workflows_group

    for command in (events_group, mappings_group, sources_group, reindex_command, check_index_command,
                    templates_group, workflows_group):
        cli.add_command(command)
    try:
        from memrelay.cli.sync_command import sync_command
    except ImportError:  # pragma: no cover - optional while the sync module is absent
        return
    cli.add_command(sync_command)


_register()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
