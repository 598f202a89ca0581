"""entity types carry display metadata; starter collections gain Personize's standard-schema properties

Adds ``entity_types.label``, ``plural_label``, ``icon``, ``color``, ``identifier_column`` and ``updated_at``
(Personize's entity types API: ``GET/PATCH/DELETE /entities/:id``). Unset label and plural are derived from
the type's name when read, so existing rows need no values.

Existing orgs' starter collections (``Contact``, ``Company``, ``SupportTicket``, as seeded) get the properties
of Personize's published standard schemas that their entity type does not define yet (``company``,
``mobile_phone``, ``full_name``, ``linkedin_url``, ``pain_points`` ...), so Personize's templates' property
names exist out of the box. A name any collection of the type already defines is left alone (the org's own
definition wins). Each changed collection gets a new version and a ``collection_versions`` snapshot
(actor ``migration:0010``). memrelay's own property names (``company_name``, ``phone`` ...) stay.

The added properties are frozen here (not imported) so the migration keeps its meaning when the code moves on.
Downgrade drops the columns; added properties stay (removing them could drop values written since).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 12:00:00
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
ACTOR = "migration:0010"

collections = sa.table("collections", sa.column("id", sa.String), sa.column("org_id", sa.String),
                       sa.column("name", sa.String), sa.column("entity_type", sa.String),
                       sa.column("description", sa.Text), sa.column("properties", sa.JSON),
                       sa.column("tags", sa.JSON), sa.column("version", sa.Integer),
                       sa.column("archived_at", sa.DateTime), sa.column("updated_at", sa.DateTime))
collection_versions = sa.table("collection_versions", sa.column("org_id", sa.String),
                               sa.column("collection_id", sa.String), sa.column("version", sa.Integer),
                               sa.column("snapshot", sa.JSON), sa.column("actor", sa.String),
                               sa.column("created_at", sa.DateTime))

# (starter collection name, entity type) -> Personize standard-schema properties it gains
STANDARD_PROPERTIES: dict[tuple[str, str], list[dict[str, Any]]] = {
    ('Contact', 'contact'): [
        {"propertyName": "company", "type": "text", "description": "Name of the company the contact works for, as the CRM or sheet holds it.", "autoSystem": False, "tags": ["profile", "identity"]},
        {"propertyName": "mobile_phone", "type": "text", "description": "The contact's mobile phone number. Include country code if available.", "autoSystem": False, "tags": ["profile", "identity"]},
        {"propertyName": "full_name", "type": "text", "description": "The contact's full display name. Populated from CRM or concatenated from first + last name. Used as the primary display identifier in summaries and generated content.", "autoSystem": False, "tags": ["profile", "identity"]},
        {"propertyName": "phone_number", "type": "text", "description": "The contact's primary phone number. Populated from CRM or form submissions. Include country code if available (e.g., '+1-555-123-4567').", "autoSystem": False, "tags": ["profile", "identity"]},
        {"propertyName": "linkedin_url", "type": "text", "description": "The contact's LinkedIn profile URL. Populated from CRM, enrichment tools, or manual entry. Full URL format: 'https://linkedin.com/in/username'.", "autoSystem": False, "tags": ["profile", "identity"]},
        {"propertyName": "company_website", "type": "text", "description": "The website URL of the contact's company. Primarily from enrichment tools (Apollo, Clearbit), but AI can extract if mentioned in conversation or email signatures. Full URL format: 'https://acme.com'.", "autoSystem": True, "tags": ["hybrid", "identity"]},
        {"propertyName": "seniority_level", "type": "options", "description": "The contact's seniority within their organization. Can come from enrichment tools or be inferred by AI from job title and conversation context. IC = Individual Contributor (no direct reports).", "autoSystem": True, "options": ["IC", "Manager", "Director", "VP", "C-Suite", "Founder"], "tags": ["hybrid", "qualification", "queryable"]},
        {"propertyName": "personas", "type": "array", "description": "Buyer or user personas this contact matches, based on their role, behavior, goals, and challenges. AI infers by comparing the contact's profile and conversation patterns against the organization's defined persona definitions in governance variables. Examples: 'Technical Evaluator', 'Executive Sponsor', 'End User Champion', 'Budget Holder'. A contact can match multiple personas.", "autoSystem": True, "updateMode": "append", "tags": ["ai-extracted", "segmentation", "queryable"]},
        {"propertyName": "engagement_summary", "type": "text", "description": "AI-compiled snapshot of the entire relationship with this contact. Synthesizes across all interactions — calls, emails, meetings, support tickets. Should capture: how many interactions, what was discussed, current sentiment, where the relationship stands, and any notable patterns. Updated after each new interaction. This is the 'quick brief' for anyone engaging with this contact.", "autoSystem": True, "tags": ["ai-extracted", "summary"]},
        {"propertyName": "pain_points", "type": "array", "description": "Business problems or challenges the contact has expressed across any interaction. Each pain point should be a concise phrase (5-15 words). Extract both explicitly stated problems ('our deployments take 3 hours') and strongly implied ones ('we keep losing deals to competitors with faster onboarding'). Examples: 'slow deployment cycles', 'vendor lock-in concerns', 'manual reporting overhead'.", "autoSystem": True, "updateMode": "append", "tags": ["ai-extracted", "qualification", "messaging"]},
        {"propertyName": "interests_topics", "type": "array", "description": "Subjects, themes, and topics this contact actively discusses, asks about, or shows interest in. Extracted from conversations, emails, and meeting notes. Each entry should be a concise topic label (1-5 words). Examples: 'AI automation', 'data privacy compliance', 'team scaling challenges', 'API integrations'. Useful for content personalization and conversation starters.", "autoSystem": True, "updateMode": "append", "tags": ["ai-extracted", "personalization"]},
        {"propertyName": "communication_style", "type": "text", "description": "AI-observed communication preferences and style patterns. Captures: formality level (formal/casual), preferred communication length (brief/detailed), response speed patterns, technical depth preference, and any stated preferences ('just send me the bullet points', 'I prefer email over calls'). Used to tailor generated messages to match how this contact communicates.", "autoSystem": True, "tags": ["ai-extracted", "personalization"]},
        {"propertyName": "decision_maker", "type": "boolean", "description": "Whether this contact has final purchasing or decision authority. True if they explicitly state they can sign, approve budget, or make the decision unilaterally. False if they mention needing approval from someone else ('I'll need to run this by my VP'). Leave null/unset if unclear from available information.", "autoSystem": True, "tags": ["ai-extracted", "qualification", "queryable"]},
        {"propertyName": "lead_status", "type": "options", "description": "Current status of this contact in the sales/relationship pipeline. AI infers from conversation context and interaction patterns: no prior interaction = New, initial outreach sent = Contacted, needs confirmed and budget discussed = Qualified, ongoing nurture without active deal = Nurturing, paying customer = Customer, stopped engaging = Churned.", "autoSystem": True, "options": ["New", "Contacted", "Qualified", "Nurturing", "Customer", "Churned"], "tags": ["ai-extracted", "pipeline", "queryable"]},
        {"propertyName": "sentiment", "type": "options", "description": "The contact's overall emotional disposition toward your organization based on recent interactions. AI assesses from tone, word choice, and context. Positive: enthusiastic, appreciative, engaged. Neutral: factual, business-like. Frustrated: expressing dissatisfaction or impatience. At Risk: signs of disengagement, competitor mentions, or escalation language.", "autoSystem": True, "options": ["Positive", "Neutral", "Frustrated", "At Risk"], "tags": ["ai-extracted", "health", "queryable"]},
        {"propertyName": "responsive", "type": "boolean", "description": "Whether this contact is actively responsive to outreach. True if they reply to emails, attend scheduled calls, or engage in conversations. False if they have gone silent, missed multiple meetings, or stopped replying. AI infers from interaction patterns and explicit cues ('sorry I've been hard to reach').", "autoSystem": True, "tags": ["ai-extracted", "engagement", "queryable"]},
        {"propertyName": "icp_match", "type": "boolean", "description": "Whether this contact's company and role match the organization's Ideal Customer Profile criteria. AI evaluates by comparing the contact's company size, industry, role seniority, and use case against ICP definitions stored in governance variables. True if the contact fits at least one defined ICP. Requires ICP governance variables to be configured.", "autoSystem": True, "tags": ["ai-extracted", "qualification", "queryable"]},
        {"propertyName": "company_size", "type": "options", "description": "The approximate size of the contact's company by employee count. Infer from explicit mentions or contextual clues (e.g., 'our team of 50 engineers' suggests mid-market).", "autoSystem": True, "options": ["1-10", "11-50", "51-200", "201-1000", "1000+"], "tags": ["firmographic", "qualification"]},
        {"propertyName": "deal_value", "type": "number", "description": "The estimated or stated monetary value of the deal in USD. Extract explicit amounts (e.g., '$450K', '450,000 dollars'). Convert shorthand: K = thousands, M = millions. If a range is given, use the midpoint.", "autoSystem": True, "tags": ["deal", "pipeline"]},
        {"propertyName": "deal_stage", "type": "options", "description": "Current stage of the sales process with this contact. Infer from conversation context: initial outreach = Discovery, product discussion = Qualification, pricing discussed = Proposal, contract terms = Negotiation.", "autoSystem": True, "options": ["Discovery", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost"], "tags": ["deal", "pipeline"]},
        {"propertyName": "expected_close_date", "type": "date", "description": "The anticipated date when the deal is expected to close. Convert relative references ('next quarter', 'by end of Q2') to ISO 8601 dates using the conversation date as reference. If only a quarter is mentioned, use the last day of that quarter.", "autoSystem": True, "tags": ["deal", "pipeline"]},
        {"propertyName": "competitors_mentioned", "type": "array", "description": "Names of competing products or companies the contact has mentioned evaluating, using, or comparing against. Include both direct competitors and alternative approaches (e.g., 'building in-house').", "autoSystem": True, "updateMode": "append", "tags": ["competitive", "qualification"]},
        {"propertyName": "next_steps", "type": "text", "description": "The agreed-upon next actions from the most recent interaction. Include who is responsible, what they will do, and any timeline mentioned. Example: 'Sarah will share the RFP by Friday; we will send API docs and schedule a technical deep-dive next week.'", "autoSystem": True, "tags": ["deal", "action"]},
        {"propertyName": "plan_tier", "type": "text", "description": "The plan or subscription tier of the contact's account (e.g. free, pro, enterprise).", "autoSystem": False, "tags": ["account", "queryable"]},
    ],
    ('Company', 'company'): [
        {"propertyName": "company_name", "type": "text", "description": "The official registered name of the company. Populated from CRM or enrichment tools. Use the formal name (e.g., 'Acme Corporation') not abbreviations or nicknames.", "autoSystem": False, "tags": ["profile", "identity"]},
        {"propertyName": "website", "type": "text", "description": "The company's primary website URL. Populated from enrichment tools or CRM. Full URL format: 'https://acme.com'.", "autoSystem": False, "tags": ["profile", "identity"]},
        {"propertyName": "headquarters", "type": "text", "description": "The company's headquarters location. Populated from enrichment tools. Format: 'City, State/Province, Country' (e.g., 'San Francisco, CA, USA').", "autoSystem": False, "tags": ["enrichment", "firmographic"]},
        {"propertyName": "funding_stage", "type": "options", "description": "The company's current funding stage. Populated from enrichment tools (Crunchbase, Apollo). Bootstrapped = no external funding. Public = publicly traded company.", "autoSystem": False, "options": ["Bootstrapped", "Seed", "Series A", "Series B", "Series C+", "Public"], "tags": ["enrichment", "firmographic", "queryable"]},
        {"propertyName": "business_model", "type": "options", "description": "The company's primary business model. Can come from enrichment data or AI can infer from conversations (e.g., 'we sell to enterprise customers' suggests B2B, 'our marketplace connects buyers and sellers' suggests Marketplace).", "autoSystem": True, "options": ["B2B", "B2C", "B2B2C", "Marketplace", "Platform"], "tags": ["hybrid", "firmographic", "queryable"]},
        {"propertyName": "icps", "type": "array", "description": "Ideal Customer Profile segments this company matches. AI evaluates by comparing the company's industry, size, revenue, technology stack, and business model against ICP definitions stored in governance variables. Each entry is the name of a matching ICP (e.g., 'Mid-Market SaaS', 'Enterprise Healthcare', 'High-Growth Startup'). A company can match multiple ICPs. Requires ICP governance variables to be configured.", "autoSystem": True, "tags": ["ai-extracted", "segmentation", "queryable"]},
        {"propertyName": "technology_stack", "type": "array", "description": "Technologies, platforms, and tools used by the company. AI extracts from technical conversations with the company's contacts (e.g., 'we run on AWS', 'our frontend is React', 'we use Snowflake for analytics'). Each entry is a specific technology name. Focus on infrastructure and development stack, not generic SaaS tools.", "autoSystem": True, "updateMode": "append", "tags": ["ai-extracted", "technical"]},
        {"propertyName": "key_decision_makers", "type": "array", "description": "Names and roles of people involved in purchasing or strategic decisions at this company. AI extracts from conversations (e.g., 'let me loop in our CTO Sarah Chen', 'the final sign-off comes from our VP of Ops'). Each entry should include name and role when available (e.g., 'Sarah Chen - CTO', 'Mike Rivera - VP Operations').", "autoSystem": True, "updateMode": "append", "tags": ["ai-extracted", "qualification"]},
        {"propertyName": "company_summary", "type": "text", "description": "AI-compiled snapshot of everything known about this company from all interactions across all contacts. Synthesizes: what the company does, their current priorities, relationship history, active opportunities, and any notable patterns. Updated after each new interaction with any of the company's contacts. This is the 'quick brief' for anyone engaging with this account.", "autoSystem": True, "tags": ["ai-extracted", "summary"]},
        {"propertyName": "buying_signals", "type": "array", "description": "Indicators of purchase intent or readiness detected from conversations with the company's contacts. AI extracts explicit signals ('we have budget allocated for Q2', 'our contract with [competitor] expires in March') and implicit ones ('can you send pricing?', 'who else in our industry uses this?'). Each entry is a concise signal description (5-20 words) with approximate date if available.", "autoSystem": True, "updateMode": "append", "tags": ["ai-extracted", "pipeline"]},
        {"propertyName": "active_customer", "type": "boolean", "description": "Whether this company is a current paying customer. AI infers from conversation context: references to 'our account', 'our subscription', support ticket language, or renewal discussions indicate true. Prospecting language, demo requests, or evaluation discussions indicate false.", "autoSystem": True, "tags": ["ai-extracted", "segmentation", "queryable"]},
        {"propertyName": "account_health", "type": "options", "description": "Overall health of the relationship with this company. AI assesses from interaction patterns across all contacts: Thriving = expanding usage, positive sentiment, active engagement. Stable = consistent usage, no red flags. At Risk = declining engagement, frustration signals, competitor mentions, missed renewals. Churned = confirmed cancellation or complete disengagement.", "autoSystem": True, "options": ["Thriving", "Stable", "At Risk", "Churned"], "tags": ["ai-extracted", "health", "queryable"]},
        {"propertyName": "competitor_user", "type": "boolean", "description": "Whether this company is currently using or evaluating a competing product. AI detects from conversations: 'we're currently using [competitor]', 'we're comparing you with [competitor]', 'we're migrating from [competitor]'. True if any competitor usage or evaluation is mentioned. Useful for competitive displacement campaigns.", "autoSystem": True, "tags": ["ai-extracted", "competitive", "queryable"]},
        {"propertyName": "contract_renewal_date", "type": "date", "description": "The date when the company's current contract or subscription is due for renewal. Primarily populated from CRM or billing system. AI can extract if mentioned in conversation ('our contract is up in June', 'we renew in Q3'). ISO 8601 format. Critical for triggering renewal campaigns and CS outreach.", "autoSystem": True, "tags": ["hybrid", "pipeline", "queryable"]},
        {"propertyName": "phone", "type": "text", "description": "The company's main phone number, as the CRM holds it.", "autoSystem": False, "tags": ["profile"]},
        {"propertyName": "description", "type": "text", "description": "What the company does, in a few sentences (CRM or enrichment).", "autoSystem": True, "tags": ["profile"]},
    ],
    ('SupportTicket', 'ticket'): [
        {"propertyName": "issue_category", "type": "options", "description": "Primary classification of the support issue. Categorize based on the core problem, not the symptom. If the issue spans multiple categories, choose the most impactful one.", "autoSystem": True, "options": ["Bug Report", "Feature Request", "How-To Question", "Account Issue", "Billing", "Performance", "Integration", "Security"], "tags": ["classification", "routing"]},
        {"propertyName": "severity", "type": "options", "description": "Impact severity of the issue. Critical: system down or data loss. High: major feature broken, no workaround. Medium: feature impaired but workaround exists. Low: minor inconvenience or cosmetic issue.", "autoSystem": True, "options": ["Critical", "High", "Medium", "Low"], "tags": ["classification", "priority"]},
        {"propertyName": "product_area", "type": "text", "description": "The specific product feature or module affected. Be as specific as possible: 'Dashboard export to CSV' rather than 'Dashboard'. Include the UI location if mentioned.", "autoSystem": True, "tags": ["classification", "routing"]},
        {"propertyName": "steps_to_reproduce", "type": "text", "description": "Ordered sequence of actions that trigger the issue. Extract from the customer's description, normalizing into clear steps. Include browser, OS, or environment details if mentioned.", "autoSystem": True, "tags": ["technical", "debugging"]},
        {"propertyName": "error_message", "type": "text", "description": "The exact error message or code the customer reported. Preserve the original text verbatim, including error codes, HTTP status codes, or stack trace snippets.", "autoSystem": True, "tags": ["technical", "debugging"]},
        {"propertyName": "customer_sentiment", "type": "options", "description": "Overall emotional tone of the customer. Frustrated: expressing anger or dissatisfaction. Concerned: worried but composed. Neutral: factual reporting. Positive: understanding or appreciative despite the issue.", "autoSystem": True, "options": ["Frustrated", "Concerned", "Neutral", "Positive"], "tags": ["sentiment", "escalation"]},
        {"propertyName": "resolution_status", "type": "options", "description": "Current resolution state. Resolved: fix confirmed by customer. Workaround Provided: temporary solution given. Escalated: sent to engineering or management. Pending: awaiting action. Unresolved: no solution found.", "autoSystem": True, "options": ["Resolved", "Workaround Provided", "Escalated", "Pending", "Unresolved"], "tags": ["status", "tracking"]},
        {"propertyName": "account_tier", "type": "options", "description": "The customer's subscription or account tier, which affects SLA and priority routing. Extract from the ticket metadata or conversation context.", "autoSystem": True, "options": ["Free", "Starter", "Professional", "Enterprise"], "tags": ["account", "priority"]},
    ],
}


def upgrade() -> None:
    with op.batch_alter_table("entity_types") as batch:
        batch.add_column(sa.Column("label", sa.String(100), nullable=True))
        batch.add_column(sa.Column("plural_label", sa.String(100), nullable=True))
        batch.add_column(sa.Column("icon", sa.String(100), nullable=True))
        batch.add_column(sa.Column("color", sa.String(40), nullable=True))
        batch.add_column(sa.Column("identifier_column", sa.String(100), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime, nullable=True))
    conn = op.get_bind()
    changed = 0
    for (name, entity_type), wanted in STANDARD_PROPERTIES.items():
        for row in conn.execute(sa.select(collections).where(collections.c.name == name,
                                                             collections.c.entity_type == entity_type)
                                .order_by(collections.c.org_id)).all():
            changed += extend(conn, row, wanted)
    if changed:
        log.info("0010: %d starter collections gained Personize standard-schema properties", changed)


def extend(conn: Any, row: Any, wanted: list[dict[str, Any]]) -> int:
    """Append the standard properties no collection of the row's entity type defines; 1 if it changed."""
    defined: set[str] = set()
    for props in conn.execute(sa.select(collections.c.properties).where(
            collections.c.org_id == row.org_id, collections.c.entity_type == row.entity_type)).scalars():
        defined.update(p.get("propertyName") for p in props or [])
    added = [p for p in wanted if p["propertyName"] not in defined]
    if not added:
        return 0
    now = datetime.now(UTC)
    properties = [*(row.properties or []), *added]
    version = row.version + 1
    conn.execute(collections.update().where(collections.c.id == row.id).values(
        properties=properties, version=version, updated_at=now))
    conn.execute(collection_versions.insert().values(
        org_id=row.org_id, collection_id=row.id, version=version, actor=ACTOR, created_at=now,
        snapshot={"name": row.name, "entityType": row.entity_type, "description": row.description,
                  "properties": properties, "tags": row.tags, "archived": row.archived_at is not None}))
    return 1


def downgrade() -> None:
    with op.batch_alter_table("entity_types") as batch:
        for column in ("updated_at", "identifier_column", "color", "icon", "plural_label", "label"):
            batch.drop_column(column)
