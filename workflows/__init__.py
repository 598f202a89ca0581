"""Declarative workflows: YAML definitions (trigger → steps) run by RQ against the engine services.

``workflows.loader`` reads and validates definitions, ``workflows.runner`` executes a run step by step,
``workflows.triggers`` starts runs from inbound events, schedules and manual calls, and
``workflows.n8n`` renders definitions as n8n workflow documents.
"""
