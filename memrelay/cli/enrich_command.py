"""``memrelay enrich``: infer one inferred property over a whole collection (or a filter's matches) in this
process, chunk by chunk, with a progress bar; ``--resume RUN`` finishes a run that stopped.

Registered in :mod:`memrelay.cli.main` with the other commands.
"""

from __future__ import annotations

import json

import click

from memrelay.cli.support import open_services


@click.command("enrich")
@click.option("--org", "org_name", required=True, help="Organisation (by name).")
@click.option("--collection", default=None, help="Entity type or collection name, e.g. contact.")
@click.option("--property", "property_name", default=None, help="The inferred property, e.g. company_type.")
@click.option("--mode", type=click.Choice(["auto", "llm", "offline"]), default="auto", show_default=True,
              help="auto: the property's declared path (its own auto: the LLM when MEMRELAY_LLM_MODEL is set, "
                   "else offline rules).")
@click.option("--filter", "filter_json", default=None,
              help='Only records matching a search, as JSON: {"groups": [{"conditions": [...]}]}.')
@click.option("--chunk-size", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--resume", "resume_run", default=None, help="Continue this run id instead of starting one.")
@click.option("--dry-run", is_flag=True, help="Only count the records and estimate the cost.")
def enrich_command(org_name: str, collection: str | None, property_name: str | None, mode: str,
                   filter_json: str | None, chunk_size: int, resume_run: str | None, dry_run: bool) -> None:
    """Infer an inferred property for every record of a collection (LLM or offline), with progress and cost."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from memrelay.engine.enrichment.runs import EnrichmentRunRequest

    console = Console(stderr=True)
    services = open_services()
    try:
        org_id = services.tenancy.org_by_name(org_name).id
        enrichment = services.enrichment
        if resume_run:
            run_id, chunks = resume_run, enrichment.resume(org_id, resume_run)
        else:
            if not collection or not property_name:
                raise click.UsageError("--collection and --property are required (or --resume RUN)")
            body = {"collection": collection, "property": property_name, "mode": mode, "chunkSize": chunk_size,
                    "dryRun": dry_run, **(json.loads(filter_json) if filter_json else {})}
            started = enrichment.start_run(org_id, EnrichmentRunRequest.model_validate(body))
            if dry_run:
                click.echo(json.dumps(started, default=str, indent=2))
                return
            run_id, chunks = started["runId"], list(range(started["chunks"]["total"]))
            console.print(f"run [bold]{run_id}[/]: {started['total']} record(s), mode {started['mode']}, "
                          f"estimate ${started['estimateUsd']:.4f}")
        status = enrichment.status(org_id, run_id)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console) as bar:
            task = bar.add_task(f"{status['collection']}.{status['property']}", total=status["total"],
                                completed=status["processed"])
            for index in chunks:
                enrichment.process_chunk(run_id, org_id, index)
                bar.update(task, completed=enrichment.status(org_id, run_id)["processed"])
        status = enrichment.status(org_id, run_id)
        click.echo(json.dumps({k: status[k] for k in ("runId", "status", "total", "processed", "counts",
                                                      "estimateUsd", "costUsd")}, indent=2))
    finally:
        services.close()
