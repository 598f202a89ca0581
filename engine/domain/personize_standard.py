"""Personize's published standard schemas, as memrelay's starter collections carry them.

Property names, types, options, update modes and descriptions of the example schemas in
personizeai/personize-skills (``reference/schemas/examples/{contact,company,sales-contact,support-ticket}-schema.json``,
Apache-2.0) and the names its templates write (``skills/personize-code/templates/hubspot-to-personize.json``,
``gsheets-to-personize.json``, ``skills/personize-memory/templates/hubspot.md``: the "Contacts Standard Schema"
fields ``full_name``, ``phone``, ``mobile_phone``, ``company``, ``job_title``). Only the properties memrelay's
own starter collections do not already define are listed here; where both exist (``company_name`` and
``company``) both are kept, so memrelay's names and Personize's work side by side.
"""

from __future__ import annotations

from typing import Any


def _p(name: str, type_: str, description: str, *, autoSystem: bool = True, **extra: Any) -> dict[str, Any]:
    return {"propertyName": name, "type": type_, "description": description, "autoSystem": autoSystem, **extra}


# The "Contacts Standard Schema" fields Personize's HubSpot / Google Sheets templates write (structured CRM
# values, not extracted from text).
CONTACT_TEMPLATE_FIELDS: list[dict[str, Any]] = [
    _p("company", "text", "Name of the company the contact works for, as the CRM or sheet holds it.",
       autoSystem=False, tags=["profile", "identity"]),
    _p("mobile_phone", "text", "The contact's mobile phone number. Include country code if available.",
       autoSystem=False, tags=["profile", "identity"]),
]

# contact-schema.json ("Contact Properties")
CONTACT: list[dict[str, Any]] = [
    _p('full_name', 'text',
       "The contact's full display name. Populated from CRM or concatenated from first + last name. Used as the primary display identifier in summaries and generated content.",
       autoSystem=False, tags=['profile', 'identity']),
    _p('phone_number', 'text',
       "The contact's primary phone number. Populated from CRM or form submissions. Include country code if available (e.g., '+1-555-123-4567').",
       autoSystem=False, tags=['profile', 'identity']),
    _p('linkedin_url', 'text',
       "The contact's LinkedIn profile URL. Populated from CRM, enrichment tools, or manual entry. Full URL format: 'https://linkedin.com/in/username'.",
       autoSystem=False, tags=['profile', 'identity']),
    _p('company_website', 'text',
       "The website URL of the contact's company. Primarily from enrichment tools (Apollo, Clearbit), but AI can extract if mentioned in conversation or email signatures. Full URL format: 'https://acme.com'.",
       tags=['hybrid', 'identity']),
    _p('seniority_level', 'options',
       "The contact's seniority within their organization. Can come from enrichment tools or be inferred by AI from job title and conversation context. IC = Individual Contributor (no direct reports).",
       options=['IC', 'Manager', 'Director', 'VP', 'C-Suite', 'Founder'], tags=['hybrid', 'qualification', 'queryable']),
    _p('personas', 'array',
       "Buyer or user personas this contact matches, based on their role, behavior, goals, and challenges. AI infers by comparing the contact's profile and conversation patterns against the organization's defined persona definitions in governance variables. Examples: 'Technical Evaluator', 'Executive Sponsor', 'End User Champion', 'Budget Holder'. A contact can match multiple personas.",
       updateMode="append", tags=['ai-extracted', 'segmentation', 'queryable']),
    _p('engagement_summary', 'text',
       "AI-compiled snapshot of the entire relationship with this contact. Synthesizes across all interactions — calls, emails, meetings, support tickets. Should capture: how many interactions, what was discussed, current sentiment, where the relationship stands, and any notable patterns. Updated after each new interaction. This is the 'quick brief' for anyone engaging with this contact.",
       tags=['ai-extracted', 'summary']),
    _p('pain_points', 'array',
       "Business problems or challenges the contact has expressed across any interaction. Each pain point should be a concise phrase (5-15 words). Extract both explicitly stated problems ('our deployments take 3 hours') and strongly implied ones ('we keep losing deals to competitors with faster onboarding'). Examples: 'slow deployment cycles', 'vendor lock-in concerns', 'manual reporting overhead'.",
       updateMode="append", tags=['ai-extracted', 'qualification', 'messaging']),
    _p('interests_topics', 'array',
       "Subjects, themes, and topics this contact actively discusses, asks about, or shows interest in. Extracted from conversations, emails, and meeting notes. Each entry should be a concise topic label (1-5 words). Examples: 'AI automation', 'data privacy compliance', 'team scaling challenges', 'API integrations'. Useful for content personalization and conversation starters.",
       updateMode="append", tags=['ai-extracted', 'personalization']),
    _p('communication_style', 'text',
       "AI-observed communication preferences and style patterns. Captures: formality level (formal/casual), preferred communication length (brief/detailed), response speed patterns, technical depth preference, and any stated preferences ('just send me the bullet points', 'I prefer email over calls'). Used to tailor generated messages to match how this contact communicates.",
       tags=['ai-extracted', 'personalization']),
    _p('decision_maker', 'boolean',
       "Whether this contact has final purchasing or decision authority. True if they explicitly state they can sign, approve budget, or make the decision unilaterally. False if they mention needing approval from someone else ('I'll need to run this by my VP'). Leave null/unset if unclear from available information.",
       tags=['ai-extracted', 'qualification', 'queryable']),
    _p('lead_status', 'options',
       'Current status of this contact in the sales/relationship pipeline. AI infers from conversation context and interaction patterns: no prior interaction = New, initial outreach sent = Contacted, needs confirmed and budget discussed = Qualified, ongoing nurture without active deal = Nurturing, paying customer = Customer, stopped engaging = Churned.',
       options=['New', 'Contacted', 'Qualified', 'Nurturing', 'Customer', 'Churned'], tags=['ai-extracted', 'pipeline', 'queryable']),
    _p('sentiment', 'options',
       "The contact's overall emotional disposition toward your organization based on recent interactions. AI assesses from tone, word choice, and context. Positive: enthusiastic, appreciative, engaged. Neutral: factual, business-like. Frustrated: expressing dissatisfaction or impatience. At Risk: signs of disengagement, competitor mentions, or escalation language.",
       options=['Positive', 'Neutral', 'Frustrated', 'At Risk'], tags=['ai-extracted', 'health', 'queryable']),
    _p('responsive', 'boolean',
       "Whether this contact is actively responsive to outreach. True if they reply to emails, attend scheduled calls, or engage in conversations. False if they have gone silent, missed multiple meetings, or stopped replying. AI infers from interaction patterns and explicit cues ('sorry I've been hard to reach').",
       tags=['ai-extracted', 'engagement', 'queryable']),
    _p('icp_match', 'boolean',
       "Whether this contact's company and role match the organization's Ideal Customer Profile criteria. AI evaluates by comparing the contact's company size, industry, role seniority, and use case against ICP definitions stored in governance variables. True if the contact fits at least one defined ICP. Requires ICP governance variables to be configured.",
       tags=['ai-extracted', 'qualification', 'queryable']),
]

# sales-contact-schema.json ("Sales Contact Properties"): the deal fields of a contact
SALES_CONTACT: list[dict[str, Any]] = [
    _p('company_size', 'options',
       "The approximate size of the contact's company by employee count. Infer from explicit mentions or contextual clues (e.g., 'our team of 50 engineers' suggests mid-market).",
       options=['1-10', '11-50', '51-200', '201-1000', '1000+'], tags=['firmographic', 'qualification']),
    _p('deal_value', 'number',
       "The estimated or stated monetary value of the deal in USD. Extract explicit amounts (e.g., '$450K', '450,000 dollars'). Convert shorthand: K = thousands, M = millions. If a range is given, use the midpoint.",
       tags=['deal', 'pipeline']),
    _p('deal_stage', 'options',
       'Current stage of the sales process with this contact. Infer from conversation context: initial outreach = Discovery, product discussion = Qualification, pricing discussed = Proposal, contract terms = Negotiation.',
       options=['Discovery', 'Qualification', 'Proposal', 'Negotiation', 'Closed Won', 'Closed Lost'], tags=['deal', 'pipeline']),
    _p('expected_close_date', 'date',
       "The anticipated date when the deal is expected to close. Convert relative references ('next quarter', 'by end of Q2') to ISO 8601 dates using the conversation date as reference. If only a quarter is mentioned, use the last day of that quarter.",
       tags=['deal', 'pipeline']),
    _p('competitors_mentioned', 'array',
       "Names of competing products or companies the contact has mentioned evaluating, using, or comparing against. Include both direct competitors and alternative approaches (e.g., 'building in-house').",
       updateMode="append", tags=['competitive', 'qualification']),
    _p('next_steps', 'text',
       "The agreed-upon next actions from the most recent interaction. Include who is responsible, what they will do, and any timeline mentioned. Example: 'Sarah will share the RFP by Friday; we will send API docs and schedule a technical deep-dive next week.'",
       tags=['deal', 'action']),
]

# 003's structured-fact example (``search`` by ``plan_tier``)
CONTACT_PLAN: list[dict[str, Any]] = [
    _p("plan_tier", "text", "The plan or subscription tier of the contact's account (e.g. free, pro, enterprise).",
       autoSystem=False, tags=["account", "queryable"]),
]

# company-schema.json ("Company Properties"), plus the HubSpot template's company fields
COMPANY: list[dict[str, Any]] = [
    _p('company_name', 'text',
       "The official registered name of the company. Populated from CRM or enrichment tools. Use the formal name (e.g., 'Acme Corporation') not abbreviations or nicknames.",
       autoSystem=False, tags=['profile', 'identity']),
    _p('website', 'text',
       "The company's primary website URL. Populated from enrichment tools or CRM. Full URL format: 'https://acme.com'.",
       autoSystem=False, tags=['profile', 'identity']),
    _p('headquarters', 'text',
       "The company's headquarters location. Populated from enrichment tools. Format: 'City, State/Province, Country' (e.g., 'San Francisco, CA, USA').",
       autoSystem=False, tags=['enrichment', 'firmographic']),
    _p('funding_stage', 'options',
       "The company's current funding stage. Populated from enrichment tools (Crunchbase, Apollo). Bootstrapped = no external funding. Public = publicly traded company.",
       options=['Bootstrapped', 'Seed', 'Series A', 'Series B', 'Series C+', 'Public'], autoSystem=False, tags=['enrichment', 'firmographic', 'queryable']),
    _p('business_model', 'options',
       "The company's primary business model. Can come from enrichment data or AI can infer from conversations (e.g., 'we sell to enterprise customers' suggests B2B, 'our marketplace connects buyers and sellers' suggests Marketplace).",
       options=['B2B', 'B2C', 'B2B2C', 'Marketplace', 'Platform'], tags=['hybrid', 'firmographic', 'queryable']),
    _p('icps', 'array',
       "Ideal Customer Profile segments this company matches. AI evaluates by comparing the company's industry, size, revenue, technology stack, and business model against ICP definitions stored in governance variables. Each entry is the name of a matching ICP (e.g., 'Mid-Market SaaS', 'Enterprise Healthcare', 'High-Growth Startup'). A company can match multiple ICPs. Requires ICP governance variables to be configured.",
       tags=['ai-extracted', 'segmentation', 'queryable']),
    _p('technology_stack', 'array',
       "Technologies, platforms, and tools used by the company. AI extracts from technical conversations with the company's contacts (e.g., 'we run on AWS', 'our frontend is React', 'we use Snowflake for analytics'). Each entry is a specific technology name. Focus on infrastructure and development stack, not generic SaaS tools.",
       updateMode="append", tags=['ai-extracted', 'technical']),
    _p('key_decision_makers', 'array',
       "Names and roles of people involved in purchasing or strategic decisions at this company. AI extracts from conversations (e.g., 'let me loop in our CTO Sarah Chen', 'the final sign-off comes from our VP of Ops'). Each entry should include name and role when available (e.g., 'Sarah Chen - CTO', 'Mike Rivera - VP Operations').",
       updateMode="append", tags=['ai-extracted', 'qualification']),
    _p('company_summary', 'text',
       "AI-compiled snapshot of everything known about this company from all interactions across all contacts. Synthesizes: what the company does, their current priorities, relationship history, active opportunities, and any notable patterns. Updated after each new interaction with any of the company's contacts. This is the 'quick brief' for anyone engaging with this account.",
       tags=['ai-extracted', 'summary']),
    _p('buying_signals', 'array',
       "Indicators of purchase intent or readiness detected from conversations with the company's contacts. AI extracts explicit signals ('we have budget allocated for Q2', 'our contract with [competitor] expires in March') and implicit ones ('can you send pricing?', 'who else in our industry uses this?'). Each entry is a concise signal description (5-20 words) with approximate date if available.",
       updateMode="append", tags=['ai-extracted', 'pipeline']),
    _p('active_customer', 'boolean',
       "Whether this company is a current paying customer. AI infers from conversation context: references to 'our account', 'our subscription', support ticket language, or renewal discussions indicate true. Prospecting language, demo requests, or evaluation discussions indicate false.",
       tags=['ai-extracted', 'segmentation', 'queryable']),
    _p('account_health', 'options',
       'Overall health of the relationship with this company. AI assesses from interaction patterns across all contacts: Thriving = expanding usage, positive sentiment, active engagement. Stable = consistent usage, no red flags. At Risk = declining engagement, frustration signals, competitor mentions, missed renewals. Churned = confirmed cancellation or complete disengagement.',
       options=['Thriving', 'Stable', 'At Risk', 'Churned'], tags=['ai-extracted', 'health', 'queryable']),
    _p('competitor_user', 'boolean',
       "Whether this company is currently using or evaluating a competing product. AI detects from conversations: 'we're currently using [competitor]', 'we're comparing you with [competitor]', 'we're migrating from [competitor]'. True if any competitor usage or evaluation is mentioned. Useful for competitive displacement campaigns.",
       tags=['ai-extracted', 'competitive', 'queryable']),
    _p('contract_renewal_date', 'date',
       "The date when the company's current contract or subscription is due for renewal. Primarily populated from CRM or billing system. AI can extract if mentioned in conversation ('our contract is up in June', 'we renew in Q3'). ISO 8601 format. Critical for triggering renewal campaigns and CS outreach.",
       tags=['hybrid', 'pipeline', 'queryable']),
    _p("phone", "text", "The company's main phone number, as the CRM holds it.", autoSystem=False,
       tags=["profile"]),
    _p("description", "text", "What the company does, in a few sentences (CRM or enrichment).",
       tags=["profile"]),
]

# support-ticket-schema.json ("Support Ticket Properties")
SUPPORT_TICKET: list[dict[str, Any]] = [
    _p('issue_category', 'options',
       'Primary classification of the support issue. Categorize based on the core problem, not the symptom. If the issue spans multiple categories, choose the most impactful one.',
       options=['Bug Report', 'Feature Request', 'How-To Question', 'Account Issue', 'Billing', 'Performance', 'Integration', 'Security'], tags=['classification', 'routing']),
    _p('severity', 'options',
       'Impact severity of the issue. Critical: system down or data loss. High: major feature broken, no workaround. Medium: feature impaired but workaround exists. Low: minor inconvenience or cosmetic issue.',
       options=['Critical', 'High', 'Medium', 'Low'], tags=['classification', 'priority']),
    _p('product_area', 'text',
       "The specific product feature or module affected. Be as specific as possible: 'Dashboard export to CSV' rather than 'Dashboard'. Include the UI location if mentioned.",
       tags=['classification', 'routing']),
    _p('steps_to_reproduce', 'text',
       "Ordered sequence of actions that trigger the issue. Extract from the customer's description, normalizing into clear steps. Include browser, OS, or environment details if mentioned.",
       tags=['technical', 'debugging']),
    _p('error_message', 'text',
       'The exact error message or code the customer reported. Preserve the original text verbatim, including error codes, HTTP status codes, or stack trace snippets.',
       tags=['technical', 'debugging']),
    _p('customer_sentiment', 'options',
       'Overall emotional tone of the customer. Frustrated: expressing anger or dissatisfaction. Concerned: worried but composed. Neutral: factual reporting. Positive: understanding or appreciative despite the issue.',
       options=['Frustrated', 'Concerned', 'Neutral', 'Positive'], tags=['sentiment', 'escalation']),
    _p('resolution_status', 'options',
       'Current resolution state. Resolved: fix confirmed by customer. Workaround Provided: temporary solution given. Escalated: sent to engineering or management. Pending: awaiting action. Unresolved: no solution found.',
       options=['Resolved', 'Workaround Provided', 'Escalated', 'Pending', 'Unresolved'], tags=['status', 'tracking']),
    _p('account_tier', 'options',
       "The customer's subscription or account tier, which affects SLA and priority routing. Extract from the ticket metadata or conversation context.",
       options=['Free', 'Starter', 'Professional', 'Enterprise'], tags=['account', 'priority']),
]
