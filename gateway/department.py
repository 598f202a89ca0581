"""Which API routes a department-restricted key may call, and binding its scope for the request.

A key restricted to entity types / collections / guideline tags (:class:`AccessScope`) may call the routes in
:data:`DEPARTMENT_ROUTES`: their answers come from engine calls that enforce the scope (records, memories,
properties and history filtered in SQL; guidelines filtered by tag), so an out-of-scope record or guideline is
"not found" there and an out-of-scope write is refused.

Every other route works on org-wide resources a department slice cannot be cut from (sources and their raw
events, outbound webhook subscriptions and the event feed, workflows, enrichment and batch runs that run later
in a worker without the caller's scope, agents, key management, usage): a restricted key gets 403 there. A
route in neither table is refused too (deny by default), and ``tests/gateway/test_department_sweep.py`` fails
until a new route is classified here.
"""

from __future__ import annotations

from flask import request

from memrelay.engine.core.access import bind_access
from memrelay.engine.core.errors import Forbidden
from memrelay.engine.stores.tenancy import KeyInfo

_V1_SCOPED = {
    "admin.me", "personize_v1_test.key_check",
    # collections and entity types (filtered to the key's types / collections)
    "memory.list_collections", "memory.create_collection", "memory.get_collection", "memory.update_collection",
    "memory.archive_collection", "memory.collection_history", "memory.list_entities", "memory.create_entity",
    "memory.get_entity", "memory.update_entity", "memory.delete_entity", "memory.archive_entity",
    "memory.restore_entity", "memory.update_entity_type", "memory.archive_entity_type",
    # records, properties, memories
    "memory.upsert", "memory.update", "memory.bulk_update", "memory.property_history", "memory.recall",
    "memory.search", "memory.filter_by_property", "memory.delete_memories", "memory.delete_record",
    "memory.cancel_deletion", "memory.erase_record",
    "semantic.memorize", "semantic.smart_recall", "semantic.smart_memory_digest", "semantic.similar",
    "semantic.segment", "semantic.query_properties",
    # guidelines (filtered by tag) and prompts over them (synchronous only: a queued run is refused)
    "governance.list_guidelines", "governance.create_guideline", "governance.get_guideline",
    "governance.replace_guideline", "governance.patch_guideline", "governance.delete_guideline",
    "governance.guideline_history", "governance.smart_guidelines", "generation.prompt",
    # Zapier actions and searches over records and memories
    "outbound.action_memorize", "outbound.action_upsert_contact", "outbound.action_upsert_company",
    "outbound.action_upsert_record", "outbound.action_batch_memorize", "outbound.search_find_record",
    "outbound.search_smart_recall",
}
_V1_1_SCOPED = {
    "personize_v1_1." + n for n in (
        "key_check", "v1_1_me", "v1_1_list_collections", "v1_1_create_collection", "v1_1_get_collection",
        "v1_1_update_collection", "v1_1_archive_collection", "v1_1_collection_history", "v1_1_list_guidelines",
        "v1_1_create_guideline", "v1_1_get_guideline", "v1_1_patch_guideline", "v1_1_replace_guideline",
        "v1_1_delete_guideline", "v1_1_guideline_history", "v1_1_action_history", "guideline_section",
        "guideline_structure", "v1_1_smart_guidelines", "v1_1_prompt", "v1_1_smart_memory_digest",
        "filter_by_property", "v1_1_bulk_update", "v1_1_delete_record", "v1_1_manage_delete", "v1_1_manage_get",
        "v1_1_manage_update", "v1_1_manage_history", "v1_1_bulk_update_post", "v1_1_cancel_deletion",
        "v1_1_delete_record_post", "v1_1_query_properties", "v1_1_smart_recall", "v1_1_memorize", "save_batch",
        "v1_1_search", "v1_1_segment", "v1_1_similar")
}
DEPARTMENT_ROUTES: frozenset[str] = frozenset(_V1_SCOPED | _V1_1_SCOPED)
"""Endpoints (Flask endpoint names) a department-restricted key may call."""

ORG_WIDE_ROUTES: frozenset[str] = frozenset({
    "admin.list_keys", "admin.create_key", "admin.revoke_key",
    "webhooks.create_source", "webhooks.list_sources", "webhooks.get_source", "webhooks.update_source",
    "webhooks.delete_source", "webhooks.reveal_source", "webhooks.rotate_source_token", "webhooks.list_events",
    "webhooks.show_event", "webhooks.replay_event",
    "outbound.event_feed", "outbound.subscribe_hook", "outbound.unsubscribe_hook", "outbound.rotate_hook_secret",
    "outbound.poll_trigger", "outbound.create_webhook", "outbound.list_webhooks", "outbound.get_webhook",
    "outbound.update_webhook", "outbound.delete_webhook", "outbound.list_deliveries", "outbound.redeliver",
    "outbound.rotate_webhook_secret", "outbound.get_allowlist", "outbound.set_allowlist",
    "outbound.webhook_event_types",
    "workflows.get_run", "workflows.list_workflows", "workflows.get_workflow", "workflows.disable_workflow",
    "workflows.enable_workflow", "workflows.run_workflow", "workflows.list_runs", "workflows.signals",
    "enrichment.start_run", "enrichment.run_status", "enrichment.resume_run", "enrichment.stale",
    "semantic.batch_memorize", "semantic.batch_status", "personize_v1_1.v1_1_batch_memorize",
    "personize_v1_1.v1_1_batch_status",
    "generation.list_agents", "generation.create_agent", "generation.get_agent", "generation.replace_agent",
    "generation.patch_agent", "generation.delete_agent", "generation.run_agent", "generation.job_status",
    "generation.usage", "personize_v1_1.v1_1_list_agents", "personize_v1_1.v1_1_get_agent",
    "personize_v1_1.run_agent",
})
"""Endpoints refused (403) to department-restricted keys: org-wide resources."""


def enter(info: KeyInfo) -> None:
    """Bind the caller's department scope for this request; 403 on a route a restricted key may not use."""
    if info.access.restricted and request.endpoint not in DEPARTMENT_ROUTES:
        raise Forbidden("this key is restricted to a department and this endpoint serves org-wide resources",
                        details={"access": info.access.to_json(), "endpoint": request.endpoint})
    bind_access(info.access)
