"""Generated CRM memory sentences for org-wide recall benches: templates × slot vocabularies.

The sentences look like the facts memrelay stores about contacts, companies and deals (roles, tools, budgets,
preferences, pains, meetings, renewals), so their embeddings have the geometry of real memories: many near
duplicates that differ in one slot, topics of very different sizes, shared boilerplate words. There are about
10^9 distinct sentences, and half the memories hold two, so 1M draws are mostly distinct and a query is a new sentence, not a stored one.
"""

from __future__ import annotations

import numpy as np

FIRST = ["Jane", "Bob", "Priya", "Carlos", "Mei", "Omar", "Anna", "Luca", "Sofia", "Ken", "Fatima", "Noah", "Emma",
         "Yusuf", "Chloe", "Ivan", "Aisha", "Tom", "Lena", "Diego", "Hana", "Marco", "Zoe", "Ravi", "Ines", "Sam"]
LAST = ["Doe", "Smith", "Patel", "Garcia", "Chen", "Haddad", "Novak", "Rossi", "Silva", "Tanaka", "Khan", "Brown",
        "Muller", "Okafor", "Dubois", "Petrov", "Nguyen", "Kim", "Larsen", "Lopez", "Cohen", "Ward", "Fischer"]
COMPANY = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises", "Vandelay",
           "Soylent", "Tyrell", "Cyberdyne", "Wonka", "Aperture", "Massive Dynamic", "Pied Piper", "Dunder Mifflin",
           "Gringotts", "Oscorp", "Nakatomi", "Monarch", "Bluth", "Prestige", "Sterling Cooper", "Los Pollos"]
TITLE = ["Head of Growth", "VP Engineering", "CTO", "CFO", "Head of Sales", "Account Executive", "Data Engineer",
         "Procurement Manager", "Chief Marketing Officer", "Security Lead", "Product Manager", "Founder",
         "Operations Director", "IT Administrator", "Customer Success Manager", "General Counsel"]
TOOL = ["Salesforce", "HubSpot", "Snowflake", "PostgreSQL", "Xero", "NetSuite", "Zendesk", "Slack", "Jira",
        "Okta", "Stripe", "Segment", "Looker", "Tableau", "AWS", "Azure", "Google Cloud", "Kubernetes", "Notion",
        "Intercom", "Marketo", "Gong", "Outreach", "QuickBooks", "Workday", "SAP", "Shopify", "Twilio"]
PURPOSE = ["accounting", "the CRM", "analytics", "support tickets", "billing", "identity", "marketing emails",
           "the data warehouse", "payroll", "project tracking", "internal chat", "infrastructure", "e-commerce"]
CITY = ["Berlin", "Paris", "Austin", "São Paulo", "Bangalore", "Tokyo", "Nairobi", "Toronto", "Madrid", "Sydney",
        "Dublin", "Singapore", "Chicago", "Lisbon", "Warsaw", "Seoul", "Denver", "Amsterdam", "Boston", "Dubai"]
CHANNEL = ["email", "phone calls", "Slack", "LinkedIn messages", "text messages", "video calls", "in-person meetings"]
PAIN = ["slow onboarding", "duplicate records", "manual reporting", "high churn", "security reviews taking months",
        "data silos between teams", "rising cloud costs", "missed renewals", "poor lead routing",
        "inaccurate forecasts", "long sales cycles", "compliance audits", "integration failures", "stale contact data"]
STAGE = ["lead", "marketing qualified", "sales qualified", "opportunity", "customer", "churned", "evangelist"]
MONTH = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
         "November", "December"]
TOPIC = ["pricing", "the security questionnaire", "a pilot", "the renewal", "SSO setup", "the API limits",
         "a data migration", "the roadmap", "an expansion to more seats", "the DPA", "a case study", "onboarding"]

TEMPLATES = [
    "{first} {last} is the {title} at {company}.",
    "{first} {last} joined {company} as {title} in {month}.",
    "{company} uses {tool} for {purpose}.",
    "{company} is replacing {tool} with {tool2} for {purpose}.",
    "{first} prefers {channel} over {channel2}.",
    "{first} {last} is based in {city}.",
    "{company} has its headquarters in {city} and {n} employees.",
    "The budget for the {company} pilot is ${money},000.",
    "{company}'s main pain point is {pain}.",
    "{first} complained about {pain} during the call on {month} {day}.",
    "{company} moved to the {stage} stage in {month}.",
    "The renewal with {company} is due on {month} {day}, {year}.",
    "{first} asked about {topic} and wants an answer by {month} {day}.",
    "We met {first} {last} from {company} in {city} to discuss {topic}.",
    "{first} {last} reports to the {title}.",
    "{company} signed a {n}-seat contract worth ${money},000 per year.",
    "{first} is evaluating {tool} and {tool2} for {purpose}.",
    "Legal at {company} needs {n} weeks to review {topic}.",
    "{first} {last} left {company} and now works at {company2} as {title}.",
    "{company} plans to expand to {city} next year.",
]


def sentences(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct generated memories (deterministic for a seeded ``rng``): exact duplicates would tie in
    any top-k and make overlap figures arbitrary."""
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen.update(dict.fromkeys(draws(rng, n + n // 8)))
    return list(seen)[:n]


def draws(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` generated memories, duplicates possible."""
    def pick(words: list[str], size: int) -> np.ndarray:
        return np.asarray(words, dtype=object)[rng.integers(0, len(words), size)]

    cols = {"first": pick(FIRST, n), "last": pick(LAST, n), "company": pick(COMPANY, n), "company2": pick(COMPANY, n),
            "title": pick(TITLE, n), "tool": pick(TOOL, n), "tool2": pick(TOOL, n), "purpose": pick(PURPOSE, n),
            "city": pick(CITY, n), "channel": pick(CHANNEL, n), "channel2": pick(CHANNEL, n), "pain": pick(PAIN, n),
            "stage": pick(STAGE, n), "month": pick(MONTH, n), "topic": pick(TOPIC, n),
            "day": rng.integers(1, 29, n), "year": rng.integers(2025, 2029, n), "n": rng.integers(2, 500, n),
            "money": rng.integers(5, 900, n)}
    first, second = rng.integers(0, len(TEMPLATES), n), rng.integers(-len(TEMPLATES), len(TEMPLATES), n)
    out = []
    for i, t in enumerate(first):
        slots = {k: v[i] for k, v in cols.items()}
        text = TEMPLATES[t].format(**slots)
        if second[i] >= 0:  # half the memories hold a second fact about the same entity
            text += " " + TEMPLATES[second[i]].format(**slots)
        out.append(text)
    return out
