"""Declarative workflows: YAML definitions (trigger → steps) run by RQ against the engine services.

``memrelay.workflows.loader`` reads and validates definitions, ``memrelay.workflows.runner`` executes a run step by step
with the services ``memrelay.workflows.steps.Steps`` is given (never the composition root),
``memrelay.workflows.triggers`` starts runs from inbound events, schedules and manual calls, and
``memrelay.workflows.n8n`` builds memrelay's n8n templates on the node pack (``n8n-nodes-memrelay/``).

May import ``memrelay.engine.ingest`` and everything below it; never the queue, the composition root or an edge
(runs are enqueued through a callable the triggers are given).
"""
