"""`memrelay templates build` and `memrelay workflows list|check|enable|disable|run`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from memrelay.cli.support import open_services


@click.group("templates")
def templates_group() -> None:
    """n8n workflow templates."""


@templates_group.command("build")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory (default: the repository's n8n_templates/).")
@click.option("--check", is_flag=True, help="Only report templates that differ from a fresh build (exit 1).")
def templates_build(out_dir: Path | None, check: bool) -> None:
    """Build every n8n template (on the memrelay node pack) as validated n8n JSON."""
    from memrelay.workflows.n8n.build import TEMPLATES_DIR, build

    changed = build(out_dir or TEMPLATES_DIR, check=check)
    for name in changed:
        click.echo(("differs: " if check else "wrote: ") + name)
    if check and changed:
        sys.exit(1)
    if not changed:
        click.echo("templates are up to date")


@click.group("workflows")
def workflows_group() -> None:
    """Declarative workflows (workflows/definitions and <data dir>/workflows)."""


def describe_trigger(t: object) -> str:
    from memrelay.workflows.models import ScheduleTrigger, WebhookTrigger

    if isinstance(t, WebhookTrigger):
        return f"webhook {','.join(t.source)} {t.event}"
    if isinstance(t, ScheduleTrigger):
        return f"schedule {t.cron or 'every ' + str(t.every)}"
    return "manual"


@workflows_group.command("list")
@click.option("--org", "org_name", default=None, help="Show whether each is enabled for this org.")
def workflows_list(org_name: str | None) -> None:
    """Every known workflow with its trigger and steps."""
    from memrelay.workflows import store
    from memrelay.workflows.loader import registry

    services = open_services()
    enabled = store.enabled_workflows(services.db, services.tenancy.org_by_name(org_name).id) if org_name else set()
    for wf in registry(services.settings.data_dir).all():
        trig = describe_trigger(wf.trigger)
        flag = " [enabled]" if wf.id in enabled else ""
        click.echo(f"{wf.id:28} {trig:44} {' → '.join(s.id for s in wf.order())}{flag}")


@workflows_group.command("check")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def workflows_check(files: tuple[Path, ...]) -> None:
    """Validate definition files (default: all known ones); errors name the file and line."""
    from memrelay.workflows.loader import WorkflowLoadError, load_file, registry

    try:
        if files:
            for f in files:
                load_file(f)
        else:
            registry(open_services().settings.data_dir)
    except WorkflowLoadError as exc:
        raise click.ClickException(exc.message) from None
    click.echo("ok")


def _toggle(workflow_id: str, org_name: str, enabled: bool) -> None:
    from memrelay.workflows import store
    from memrelay.workflows.loader import registry

    services = open_services()
    wf = registry(services.settings.data_dir).get(workflow_id)
    store.set_enabled(services.db, services.tenancy.org_by_name(org_name).id, wf.id, enabled)
    click.echo(f"{wf.id} {'enabled' if enabled else 'disabled'} for {org_name}")


@workflows_group.command("enable")
@click.argument("workflow_id")
@click.option("--org", "org_name", required=True)
def workflows_enable(workflow_id: str, org_name: str) -> None:
    """Let the workflow's event/schedule trigger start runs for an org."""
    _toggle(workflow_id, org_name, True)


@workflows_group.command("disable")
@click.argument("workflow_id")
@click.option("--org", "org_name", required=True)
def workflows_disable(workflow_id: str, org_name: str) -> None:
    """Stop the workflow's event/schedule trigger for an org."""
    _toggle(workflow_id, org_name, False)


@workflows_group.command("run")
@click.argument("workflow_id")
@click.option("--org", "org_name", required=True)
@click.option("--input", "input_json", default="{}", help="JSON object: the run's input / trigger payload.")
@click.option("--queue", "queued", is_flag=True, help="Enqueue on RQ instead of running here.")
def workflows_run(workflow_id: str, org_name: str, input_json: str, queued: bool) -> None:
    """Start a run by hand and (unless --queue) execute it in this process, printing the run as JSON."""
    from memrelay.workflows import store
    from memrelay.workflows.triggers import start_manual

    try:
        inputs = json.loads(input_json)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--input") from None
    if not isinstance(inputs, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--input")
    services = open_services()
    org_id = services.tenancy.org_by_name(org_name).id
    if queued:
        from memrelay.queue.connection import connect
        from memrelay.queue.jobs import workflow_run_enqueuer

        run_id = start_manual(services, org_id, workflow_id, inputs,
                              enqueue=workflow_run_enqueuer(connect(services.settings)))
        click.echo(json.dumps({"runId": run_id, "status": "queued"}))
        return
    run_id = start_manual(services, org_id, workflow_id, inputs, enqueue=lambda _rid: None)  # run right here
    try:
        services.workflow_runner.execute(run_id)
    except Exception:  # noqa: BLE001 - the failure is recorded on the run, printed below
        pass
    run = store.get_run(services.db, org_id, run_id)
    click.echo(json.dumps(run, indent=2, default=str))
    if run["status"] == "failed":
        sys.exit(1)
