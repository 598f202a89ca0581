"""``memrelay secrets rotate``: rotate the key that encrypts secrets at rest."""

from __future__ import annotations

import click

from memrelay.cli.support import CliGroup, open_services


@click.group("secrets", cls=CliGroup)
def secrets_group() -> None:
    """Secrets at rest (source signing secrets, path tokens, CRM tokens, outbound signing secrets)."""


@secrets_group.command("rotate")
def secrets_rotate() -> None:
    """Add a new primary key, re-encrypt every stored secret with it, then drop the old keys.

    Restart or keep running processes: they re-read the key file when they meet the new key id."""
    from memrelay.engine.core.secretbox import keyring
    from memrelay.engine.stores.secrets_rotation import rotate_secrets

    services = open_services()
    keyring()  # load this process's ring before rotating it
    from_env = services.settings.secret_keys is not None
    out = rotate_secrets(services.db, services.settings.data_dir, keys_from_env=from_env)
    click.echo(f"re-encrypted {out.rows} rows under key {out.new_key_id}; "
               f"retired {', '.join(out.retired_key_ids) or 'none'}")
    if from_env and out.retired_key_ids:
        click.echo("MEMRELAY_SECRET_KEYS is set: no row uses the retired key ids any more; remove them from "
                   "the variable everywhere.")
