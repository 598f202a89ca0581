"""Starter entity types and collections every new organisation gets."""

from __future__ import annotations

from typing import Any

from memrelay.engine.domain import personize_standard as standard

SYSTEM_ENTITY_TYPES = {
    "contact": "A person: a lead, customer user, or prospect.",
    "company": "An organisation: account, customer or prospect company.",
}
STARTER_ENTITY_TYPES = {
    **SYSTEM_ENTITY_TYPES,
    "deal": "A sales opportunity with an amount and a stage.",
    "ticket": "A support request raised by a contact.",
}
# Identity of the starter types, as Personize's multi-entity guide lays it out:
# entity type -> (primary key field, secondary key fields)
STARTER_ENTITY_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "contact": ("email", ("website_url",)),
    "company": ("website_url", ()),
    "deal": ("dealId", ("email", "website_url")),
    "ticket": ("ticketId", ("website_url", "email")),
}

# How the starter types present themselves (Personize's entity types API: label, plural, icon, color)
STARTER_ENTITY_DISPLAY: dict[str, dict[str, str]] = {
    "contact": {"label": "Contact", "plural": "Contacts", "icon": "user", "color": "#4F46E5"},
    "company": {"label": "Company", "plural": "Companies", "icon": "building", "color": "#0EA5E9"},
    "deal": {"label": "Deal", "plural": "Deals", "icon": "handshake", "color": "#16A34A"},
    "ticket": {"label": "Support Ticket", "plural": "Support Tickets", "icon": "life-buoy", "color": "#F97316"},
}


def _p(name: str, type_: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"propertyName": name, "type": type_, "description": description, "autoSystem": True, **extra}


# memrelay's own properties first, then Personize's standard-schema properties (see personize_standard);
# a name both define is memrelay's (same meaning). Existing orgs get the added ones by migration 0010.
STARTER_COLLECTIONS: list[dict[str, Any]] = [
    {
        "name": "Contact",
        "entity_type": "contact",
        "description": "Who a person is and where they stand with us.",
        "properties": [
            _p("email", "text", "Primary work email address of the person."),
            _p("first_name", "text", "Given name of the person."),
            _p("last_name", "text", "Family name of the person."),
            _p("job_title", "text", "Current job title or role, e.g. 'VP Engineering'."),
            _p("phone", "text", "Phone number in international format."),
            _p("company_name", "text", "Name of the company the person works for."),
            _p("website_url", "text", "Website of the person's company."),
            _p("lifecycle_stage", "options", "Where the person is in the funnel.",
               options=["subscriber", "lead", "marketing_qualified", "sales_qualified", "opportunity", "customer",
                        "evangelist", "churned"]),
            _p("lead_source", "text", "Channel the person first came from (ads, webinar, referral...)."),
            _p("city", "text", "City the person is based in."),
            _p("country", "text", "Country the person is based in."),
            _p("interests", "array", "Topics, products or features the person showed interest in.",
               updateMode="append"),
            _p("newsletter_opt_in", "boolean", "Whether the person agreed to receive the newsletter (yes/no)."),
            *standard.CONTACT_TEMPLATE_FIELDS, *standard.CONTACT, *standard.SALES_CONTACT, *standard.CONTACT_PLAN,
        ],
    },
    {
        "name": "Company",
        "entity_type": "company",
        "description": "Firmographics and technographics of an organisation.",
        "properties": [
            _p("name", "text", "Legal or common name of the company."),
            _p("domain", "text", "Primary web domain of the company, e.g. acme.com."),
            _p("industry", "text", "Industry or vertical the company operates in."),
            _p("employee_count", "number", "Number of employees (headcount) at the company."),
            _p("annual_revenue", "number", "Annual revenue of the company in USD."),
            _p("technologies", "array", "Technologies, databases, cloud providers and tools the company uses.",
               updateMode="append"),
            _p("city", "text", "City of the company's headquarters."),
            _p("country", "text", "Country of the company's headquarters."),
            _p("founded", "date", "Date the company was founded."),
            *standard.COMPANY,
        ],
    },
    {
        "name": "Deal",
        "entity_type": "deal",
        "description": "A sales opportunity.",
        "properties": [
            _p("deal_name", "text", "Name of the deal."),
            _p("amount", "number", "Deal value (contract amount) in the deal currency."),
            _p("currency", "text", "ISO currency code of the deal amount, e.g. USD."),
            _p("stage", "options", "Current stage of the deal in the pipeline.",
               options=["appointment_scheduled", "qualified", "presentation", "decision_maker_bought_in",
                        "contract_sent", "closed_won", "closed_lost"]),
            _p("close_date", "date", "Expected or actual close date of the deal."),
            _p("pipeline", "text", "Sales pipeline the deal belongs to."),
            _p("owner", "text", "Sales rep who owns the deal."),
        ],
    },
    {
        "name": "SupportTicket",
        "entity_type": "ticket",
        "description": "A support request and its state.",
        "properties": [
            _p("subject", "text", "One-line summary of the support request."),
            _p("priority", "options", "How urgent the ticket is.", options=["low", "medium", "high", "urgent"]),
            _p("status", "options", "Workflow state of the ticket.",
               options=["new", "waiting_on_contact", "waiting_on_us", "closed"]),
            _p("category", "text", "Product area or type of problem."),
            _p("opened_at", "date", "When the ticket was opened."),
            _p("satisfaction", "number", "Customer satisfaction score given at close (1-5)."),
            *standard.SUPPORT_TICKET,
        ],
    },
]
