"""Word lists shared by the offline extractor and the dedup/supersede semantics. Data only."""

from __future__ import annotations

# Tokens that end with a period but do not end a sentence.
ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt ft vs etc approx est dept univ assn bros gen gov lt col sgt capt
    e.g i.e a.m p.m u.s u.k u.n no nos fig al cf jan feb mar apr jun jul aug sep sept oct nov dec
    mon tue wed thu fri sat sun""".split()
)
# Company suffixes: a period after them ends a sentence only when a typical sentence starter follows.
COMPANY_SUFFIXES = frozenset("inc ltd corp co llc plc gmbh ag sa bv pty".split())

SUBJECT_PRONOUNS = frozenset({"he", "she", "they", "it"})
POSSESSIVE_PRONOUNS = frozenset({"his", "her", "their", "its"})
# After "They" (plural) these become singular once a company/person name replaces the pronoun.
THEY_VERB_AGREEMENT = {
    "are": "is",
    "were": "was",
    "have": "has",
    "do": "does",
    "don't": "doesn't",
    "aren't": "isn't",
    "weren't": "wasn't",
    "haven't": "hasn't",
}
# "It" is often a dummy subject ("It seems ...", "It was great to ...") and then must stay.
DUMMY_IT_FOLLOWERS = frozenset(
    """seems seemed looks looked appears appeared sounds sounded feels felt depends depended turns
    turned makes made remains takes took""".split()
)
DUMMY_IT_ADJECTIVES = frozenset(
    """great good nice important possible likely unlikely unclear clear hard easy worth time too not
    fine ok okay interesting helpful fun tough difficult necessary true a an""".split()
)

STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being am it its
    this that these those there their they them he she his her we our us you your i me my not no yes
    do does did done has have had having will would can could should may might must shall about into
    over under than then so such very just also more most less some any each which who whom whose what
    when where why how whether number amount value list type name current currently main primary etc
    per via other others many much all both only own same new old""".split()
)
# Small synonym table used to widen a property's keywords (stemmed forms on both sides).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "employee": ("employees", "staff", "headcount", "people", "fte", "team"),
    "headcount": ("employees", "staff", "people", "fte"),
    "revenue": ("arr", "mrr", "sales", "turnover"),
    "budget": ("spend", "spending"),
    "price": ("cost", "pricing", "priced"),
    "deal": ("contract", "opportunity"),
    "website": ("url", "site", "domain", "homepage"),
    "url": ("website", "site", "link"),
    "email": ("e-mail", "mail"),
    "phone": ("telephone", "mobile", "cell", "tel"),
    "technology": ("tech", "stack", "tool", "tools", "software", "platform"),
    "tech": ("technology", "stack", "tool", "tools"),
    "meeting": ("call", "demo", "sync"),
    "competitor": ("competitors", "alternative", "alternatives", "vendor"),
    "renewal": ("renew", "renews", "renewing"),
    "founded": ("established", "started"),
    "location": ("based", "headquartered", "hq", "office", "city"),
    "industry": ("sector", "vertical", "market"),
    "growth": ("grew", "grow", "grows", "growing", "grown"),
}

NEGATIONS = frozenset(
    """not no never none nobody nothing neither nor without lacks lack lacking isn't aren't wasn't weren't
    don't doesn't didn't won't can't cannot couldn't hasn't haven't hadn't shouldn't wouldn't""".split()
)
NEGATION_PHRASES = (
    "no longer",
    "not anymore",
    "stopped using",
    "stopped",
    "dropped",
    "churned",
    "cancelled",
    "canceled",
    "moved away from",
    "got rid of",
    "phased out",
    "decommissioned",
)
AFFIRMATIONS = frozenset(
    """yes true confirmed confirm confirms approved approve has have had uses use using used does do did
    is are was were agreed signed enabled active""".split()
)
ADDITIVE_MARKERS = (
    "also",
    "as well",
    "in addition",
    "additionally",
    "alongside",
    "besides",
    "another",
    "too",
)

NUMBER_WORDS = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "hundred": 100,
    "thousand": 1000,
    "dozen": 12,
}

# Known technologies by the slot a newer statement supersedes. Keys are canonical display names, values
# the lower-case aliases matched as whole words.
TECHNOLOGIES: dict[str, dict[str, tuple[str, ...]]] = {
    "database": {
        "PostgreSQL": ("postgresql", "postgres", "psql"),
        "MySQL": ("mysql",),
        "MariaDB": ("mariadb",),
        "MongoDB": ("mongodb", "mongo"),
        "SQL Server": ("sql server", "mssql"),
        "Oracle": ("oracle db", "oracle database", "oracle"),
        "DynamoDB": ("dynamodb",),
        "Cassandra": ("cassandra",),
        "SQLite": ("sqlite",),
        "CockroachDB": ("cockroachdb",),
        "Supabase": ("supabase",),
        "Firebase": ("firebase", "firestore"),
        "Elasticsearch": ("elasticsearch",),
        "Redis": ("redis",),
        "Azure SQL": ("azure sql", "azure sql database"),
        "Db2": ("db2", "ibm db2"),
        "Amazon Aurora": ("amazon aurora", "aurora postgresql", "aurora mysql"),
        "Cloud SQL": ("cloud sql",),
        "Neo4j": ("neo4j",),
    },
    "cloud": {
        "AWS": ("aws", "amazon web services"),
        "Azure": ("azure", "microsoft azure"),
        "Google Cloud": ("google cloud", "gcp", "google cloud platform"),
        "DigitalOcean": ("digitalocean",),
        "Heroku": ("heroku",),
        "Vercel": ("vercel",),
        "Netlify": ("netlify",),
        "Cloudflare": ("cloudflare",),
        "IBM Cloud": ("ibm cloud",),
        "Oracle Cloud": ("oracle cloud", "oci"),
        "Hetzner": ("hetzner",),
        "Linode": ("linode",),
    },
    "crm": {
        "Salesforce": ("salesforce", "sfdc"),
        "HubSpot": ("hubspot",),
        "Pipedrive": ("pipedrive",),
        "Zoho CRM": ("zoho crm", "zoho"),
        "Dynamics 365": ("dynamics 365", "microsoft dynamics"),
        "Close": ("close.com", "close crm"),
        "Attio": ("attio",),
        "Copper": ("copper crm",),
        "Freshsales": ("freshsales",),
        "monday.com": ("monday.com", "monday crm"),
    },
    "framework": {
        "React": ("react", "reactjs", "react.js"),
        "Angular": ("angular",),
        "Vue": ("vue", "vue.js", "vuejs"),
        "Svelte": ("svelte",),
        "Next.js": ("next.js", "nextjs"),
        "Django": ("django",),
        "Flask": ("flask",),
        "FastAPI": ("fastapi",),
        "Rails": ("rails", "ruby on rails"),
        "Laravel": ("laravel",),
        "Spring": ("spring boot", "spring"),
        "Express": ("express.js", "expressjs"),
        ".NET": (".net", "asp.net"),
        "Node.js": ("node.js", "nodejs"),
        "Magento": ("magento", "adobe commerce"),
        "Shopify Hydrogen": ("shopify hydrogen",),
        "Symfony": ("symfony",),
        "Nuxt": ("nuxt", "nuxt.js"),
        "Remix": ("remix run", "remix.run"),
        "Gatsby": ("gatsby",),
        "Ember": ("ember.js", "emberjs"),
        "Phoenix": ("phoenix framework",),
        "NestJS": ("nestjs",),
    },
    "data_warehouse": {
        "Snowflake": ("snowflake",),
        "BigQuery": ("bigquery",),
        "Redshift": ("redshift",),
        "Databricks": ("databricks",),
        "ClickHouse": ("clickhouse",),
    },
    "language": {
        "Python": ("python",),
        "Java": ("java",),
        "Go": ("golang",),
        "Rust": ("rust",),
        "TypeScript": ("typescript",),
        "JavaScript": ("javascript",),
        "Ruby": ("ruby",),
        "PHP": ("php",),
        "Kotlin": ("kotlin",),
        "C#": ("c#",),
        "Scala": ("scala",),
        "Elixir": ("elixir",),
    },
    "infrastructure": {
        "Kubernetes": ("kubernetes", "k8s"),
        "Docker": ("docker",),
        "Terraform": ("terraform",),
        "Kafka": ("kafka",),
        "RabbitMQ": ("rabbitmq",),
        "Stripe": ("stripe",),
        "Segment": ("segment",),
        "Slack": ("slack",),
        "Jira": ("jira",),
        "GitHub": ("github",),
        "GitLab": ("gitlab",),
        "Zendesk": ("zendesk",),
        "Intercom": ("intercom",),
        "Marketo": ("marketo",),
        "Mailchimp": ("mailchimp",),
        "Shopify": ("shopify",),
        "Tableau": ("tableau",),
        "Looker": ("looker",),
        "Okta": ("okta",),
        "Twilio": ("twilio",),
        "Datadog": ("datadog",),
        "Sentry": ("sentry",),
    },
}
# Aliases that are also everyday words: matched only when written with a capital letter.
AMBIGUOUS_TECH_ALIASES = frozenset(
    """rust go spring segment slack express close oracle react flask rails ruby scala looker sentry stripe
    snowflake elixir java python swift copper intercom supabase""".split()
)
# Words that name a technology slot without naming the product.
TECH_SLOT_WORDS: dict[str, tuple[str, ...]] = {
    "database": ("database", "databases", "db", "datastore", "data store"),
    "cloud": ("cloud provider", "cloud platform", "hosting provider", "cloud", "hosted on", "hosting"),
    "crm": ("crm",),
    "framework": ("framework", "frontend", "front-end", "backend framework", "web framework"),
    "data_warehouse": ("data warehouse", "warehouse"),
}

# Deal stages, canonical -> phrases (matched as whole words, longest first).
DEAL_STAGES: dict[str, tuple[str, ...]] = {
    "closed_won": (
        "closed won",
        "closed-won",
        "closedwon",
        "won the deal",
        "deal won",
        "signed the contract",
    ),
    "closed_lost": ("closed lost", "closed-lost", "closedlost", "lost the deal", "deal lost", "deal is lost"),
    "negotiation": ("negotiation", "negotiating", "contract negotiation", "in legal review", "redlines"),
    "proposal": ("proposal sent", "proposal", "quote sent", "pricing sent"),
    "demo": ("demo scheduled", "demo booked", "demo stage"),
    "qualified": ("qualified", "sales qualified", "qualification"),
    "discovery": ("discovery", "discovery call", "initial call"),
    "contract_sent": ("contract sent", "awaiting signature", "out for signature"),
    "on_hold": ("on hold", "paused", "stalled"),
}
DEAL_STAGE_CUES = ("deal stage", "pipeline stage", "stage", "deal", "opportunity", "pipeline")

# Leadership roles: canonical slot -> phrases.
LEADERSHIP_ROLES: dict[str, tuple[str, ...]] = {
    "ceo": ("ceo", "chief executive officer", "chief executive"),
    "cto": ("cto", "chief technology officer", "chief technical officer"),
    "cfo": ("cfo", "chief financial officer"),
    "coo": ("coo", "chief operating officer"),
    "cmo": ("cmo", "chief marketing officer"),
    "cro": ("cro", "chief revenue officer"),
    "cio": ("cio", "chief information officer"),
    "ciso": ("ciso", "chief information security officer"),
    "cpo": ("cpo", "chief product officer"),
    "president": ("president",),
    "founder": ("founder", "co-founder", "cofounder"),
}
ROLE_AREAS = (
    "sales",
    "marketing",
    "engineering",
    "product",
    "finance",
    "operations",
    "people",
    "hr",
    "it",
    "security",
    "data",
    "growth",
    "customer success",
    "revenue",
    "partnerships",
    "design",
    "legal",
    "procurement",
    "support",
)
PLAN_CUES = ("plan", "tier", "subscription", "package", "edition", "license")
PRICING_PLANS = (
    "free",
    "starter",
    "basic",
    "standard",
    "growth",
    "pro",
    "professional",
    "premium",
    "business",
    "team",
    "enterprise",
    "scale",
    "plus",
    "ultimate",
)
# Amount slots where a newer figure replaces the older one (funding rounds add up, so they are absent).
MONEY_SLOTS: dict[str, tuple[str, ...]] = {
    "deal_value": (
        "deal value",
        "deal size",
        "deal amount",
        "deal is worth",
        "contract value",
        "acv",
        "tcv",
        "deal worth",
        "opportunity value",
        "deal",
    ),
    "budget": ("budget", "budgeted", "spend"),
    "price": ("price", "pricing", "priced", "quote", "quoted", "costs", "cost", "per seat", "per month"),
    "revenue": ("revenue", "arr", "mrr", "annual recurring revenue", "turnover", "sales of"),
    "valuation": ("valuation", "valued at"),
}
HQ_CUES = (
    "headquartered",
    "headquarters",
    "hq",
    "head office",
    "based in",
    "based out of",
    "relocated",
    "moved their office",
    "moved its office",
    "main office",
)
# "agency" is not a vendor cue: agencies describe themselves as one ("Lumiar Studio is a brand and digital agency")
VENDOR_CUES = ("vendor", "supplier", "provider", "partner with", "outsourced to")
HEADCOUNT_CUES = (
    "employees",
    "employee",
    "headcount",
    "staff",
    "people",
    "ftes",
    "fte",
    "team of",
    "team size",
    "workforce",
    "engineers",
    "reps",
)
