"""Writes the quality datasets (entities.json, pairs.json) of bench/quality.py. Deterministic (seeded).

The material imitates what CRMs hold: discovery/follow-up call transcripts with speaker labels, email threads with
quoted replies and signatures, terse CRM notes with abbreviations, research briefs, and account notes written months
apart. Facts are drawn per entity; every fact has several phrasings and is surrounded by the small talk, questions,
logistics and pitch that real material carries. Run: .venv/bin/python bench/datasets/quality/generate.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
R = random.Random(15)

PEOPLE = [("Sarah", "Chen"), ("Marcus", "Oyelaran"), ("Priyanka", "Raman"), ("Tomás", "Ferreira"), ("Hannah", "Kowalski"),
          ("Daniel", "Ashworth"), ("Mei", "Tanaka"), ("Olu", "Adebayo"), ("Grace", "Whitfield"), ("Ravi", "Menon"),
          ("Ingrid", "Solberg"), ("Luis", "Carvajal")]
COMPANIES = ["TechFlow", "Pine Robotics", "Brightwater Health", "Kestrel Logistics", "Norvale Insurance", "Quillpoint",
             "Harbor & Vine", "Lumen Grid", "Corvid Security", "Tessellate", "Bramble Foods", "Ostara Bank"]
TITLES = ["VP of Engineering", "Head of Revenue Operations", "Director of Data", "CTO", "VP of Marketing",
          "Head of Customer Success", "Director of IT", "VP of Sales", "Head of Platform", "Chief Data Officer",
          "Director of Operations", "Head of Growth"]
DBS = ["Oracle", "PostgreSQL", "MySQL", "MongoDB", "SQL Server", "Snowflake", "PostgreSQL", "MySQL", "Oracle", "MongoDB",
       "SQL Server", "PostgreSQL"]
CLOUDS = ["AWS", "Azure", "Google Cloud", "AWS", "Azure", "AWS", "Google Cloud", "Azure", "AWS", "Google Cloud", "AWS",
          "Azure"]
PAINS = ["manual reporting", "slow onboarding", "forecast accuracy", "data silos", "churn visibility", "lead routing",
         "billing reconciliation", "alert fatigue", "pipeline hygiene", "duplicate records", "quote turnaround",
         "audit preparation"]
COMPETITORS = ["Gong", "Clari", "Outreach", "Salesloft", "People.ai", "Chorus", "Highspot", "Seismic", "Gong", "Clari",
               "Outreach", "Salesloft"]
SOLUTIONS = ["spreadsheets", "in-house scripts", "HubSpot workflows", "Excel macros", "a homegrown dashboard",
             "Google Sheets", "spreadsheets", "Zapier glue", "a legacy Access database", "in-house scripts",
             "Airtable", "Excel macros"]
CITIES = ["Austin", "Toronto", "Denver", "Rotterdam", "Chicago", "Dublin", "Osaka", "Lagos", "Boston", "Bangalore",
          "Oslo", "Bogotá"]
CHANNELS = ["email", "phone calls", "text messages", "Slack", "LinkedIn messages", "email", "phone calls", "Slack",
            "email", "text messages", "phone calls", "email"]
BILLING = ["annual", "monthly", "quarterly", "annual", "monthly", "annual", "quarterly", "monthly", "annual", "annual",
           "monthly", "quarterly"]
DMS = [("Priya", "Nair", "CFO"), ("Tom", "Reed", "CEO"), ("Alan", "Brooks", "COO"), ("Nadia", "Haddad", "CFO"),
       ("Kenji", "Mori", "CTO"), ("Beatrice", "Lund", "CEO"), ("Samuel", "Okafor", "CFO"), ("Elena", "Vasquez", "COO"),
       ("Yusuf", "Demir", "CEO"), ("Clara", "Jensen", "CFO"), ("Victor", "Hale", "CTO"), ("Anika", "Bose", "CFO")]
REPS = ["Alex", "Jordan", "Casey", "Morgan", "Riley", "Sam"]
SERIES = "ABCBDACBCADB"

SMALL_TALK = [
    ("Hi {first}, thanks for making the time today.", "thanks for making the time"),
    ("Sure, go ahead.", "go ahead"),
    ("Great to finally meet you!", "finally meet you"),
    ("Aligns perfect.", "aligns perfect"),
    ("Makes sense.", "makes sense"),
    ("Totally, that tracks.", "that tracks"),
    ("Sounds good to me.", "sounds good"),
    ("Yeah, happy to.", "happy to."),
    ("Love that.", "love that"),
    ("We've seen that a ton with growing SaaS folks.", "seen that a ton"),
    ("That's super helpful context, thank you.", "super helpful context"),
    ("Hope your week is going well.", "hope your week"),
    ("I'll send the calendar invite for Thursday.", "calendar invite"),
    ("Let's book a follow-up for next week.", "follow-up for next week"),
    ("Does Tuesday at 2pm work for you?", "tuesday at 2pm"),
    ("Tell me a bit about {company}—what's the big picture there?", "big picture"),
    ("How are you handling that today?", "handling that today"),
    ("What does success look like for you this year?", "success look like"),
    ("Sorry, you cut out for a second there.", "cut out for a second"),
    ("Can you hear me okay?", "hear me okay"),
]
# Replies and sign-offs written inline below are filler too.
FILLER_KEYS = [k for _, k in SMALL_TALK] + ["busy as always", "pretty hectic", "not bad at all", "talk then",
                                            "bye for now", "speak soon", "how is everything", "how has your week",
                                            "yes, perfect"]


def pick(options: list[str]) -> str:
    return R.choice(options)


def facts_for(i: int) -> dict[str, str | int]:
    first, last = PEOPLE[i]
    return {"first": first, "last": last, "name": f"{first} {last}", "company": COMPANIES[i], "title": TITLES[i],
            "db": DBS[i], "cloud": CLOUDS[i], "team": R.choice([12, 18, 24, 35, 40, 55, 62, 80]) + i,
            "pain": PAINS[i], "budget": f"${R.choice([60, 85, 120, 150, 180, 240, 300])}k", "competitor": COMPETITORS[i],
            "timeline": R.choice(["Q2", "Q3", "Q4"]), "dm_first": DMS[i][0], "dm_last": DMS[i][1], "dm_role": DMS[i][2],
            "channel": CHANNELS[i], "billing": BILLING[i], "headcount": R.choice([140, 220, 380, 450, 900, 1200]) + 7 * i,
            "city": CITIES[i], "series": SERIES[i], "raised": R.choice([12, 18, 25, 40, 60]), "solution": SOLUTIONS[i],
            "rep": REPS[i % len(REPS)]}


def answer_key(f: dict) -> list[dict]:
    n, c = f["name"], f["company"]
    return [
        {"fact": "title", "query": f"{n} is the {f['title']} at {c}.", "expect": [f["title"].lower()]},
        {"fact": "team_size", "query": f"{n} runs a team of {f['team']} engineers.", "expect": [str(f["team"])]},
        {"fact": "database", "query": f"{c} uses {f['db']} as its main database.", "expect": [f["db"].lower()]},
        {"fact": "cloud", "query": f"{c} runs on {f['cloud']}.", "expect": [f["cloud"].lower()]},
        {"fact": "pain_point", "query": f"The biggest pain point is {f['pain']}.", "expect": [f["pain"]]},
        {"fact": "budget", "query": f"The budget for this project is {f['budget']}.", "expect": [f["budget"][1:].lower()]},
        {"fact": "competitor", "query": f"{c} is also evaluating {f['competitor']}.", "expect": [f["competitor"].lower()]},
        {"fact": "timeline", "query": f"{c} wants to go live in {f['timeline']}.", "expect": [f["timeline"].lower()]},
        {"fact": "decision_maker", "query": f"{f['dm_first']} {f['dm_last']}, the {f['dm_role']}, signs off on the purchase.",
         "expect": [f["dm_first"].lower()]},
        {"fact": "contact_preference", "query": f"{n} prefers {f['channel']}.", "expect": [f["channel"].lower()]},
        {"fact": "billing", "query": f"{c} wants {f['billing']} billing.", "expect": [f["billing"]]},
        {"fact": "headcount", "query": f"{c} has {f['headcount']} employees.", "expect": [str(f["headcount"])]},
        {"fact": "hq", "query": f"{c} is headquartered in {f['city']}.", "expect": [f["city"].lower()]},
        {"fact": "funding", "query": f"{c} raised a Series {f['series']}.", "expect": [f"series {f['series'].lower()}"]},
        {"fact": "current_solution", "query": f"Today {c} handles this with {f['solution']}.",
         "expect": [f["solution"].lower().removeprefix("a ")]},
    ]


def small(k: int, f: dict) -> str:
    return SMALL_TALK[k][0].format(**f)


def discovery_call(f: dict) -> str:
    rep, me = f["rep"], f["first"]
    lines = [
        f"**{rep}:** {small(0, f)} {pick(['How is everything on your side?', 'How has your week been?'])}",
        f"**{me}:** {pick(['Good, busy as always.', 'Pretty hectic, but good.', 'Not bad at all, thanks.'])}",
        f"**{rep}:** {small(15, f)}",
        f"**{me}:** {small(1, f)} So I'm the {f['title']} here at {f['company']}, "
        f"{pick(['been in the seat for about three years', 'joined roughly two years ago', 'I came over from a fintech in 2022'])}. "
        f"I run a team of {f['team']} engineers across two time zones.",
        f"**{rep}:** {small(4, f)} {small(16, f)}",
        f"**{me}:** Honestly, our biggest pain point is {f['pain']}. "
        f"{pick(['It eats a couple of days every month.', 'Leadership keeps asking why it takes so long.', 'It is the thing my team complains about most.'])} "
        f"Today we handle it with {f['solution']}, which nobody loves.",
        f"**{rep}:** {small(9, f)} {small(10, f)}",
        f"**{me}:** Our core data lives in {f['db']}, and everything runs on {f['cloud']}. "
        f"{pick(['We moved the last workloads over in 2023.', 'Security signed off on that setup last year.', 'That part is not going to change.'])}",
        f"**{rep}:** {small(3, f)} {small(17, f)}",
        f"**{me}:** {pick(['Ideally', 'If all goes well'])} we want to go live in {f['timeline']}, before planning season.",
        f"**{rep}:** {small(5, f)} {small(12, f)}",
        f"**{me}:** {small(6, f)} {pick(['Talk then.', 'Thanks, bye for now.', 'Speak soon.'])}",
    ]
    return "\n\n".join(lines)


def followup_call(f: dict) -> str:
    rep, me = f["rep"], f["first"]
    lines = [
        f"[00:00] {rep}: {small(11, f)} {small(18, f)}",
        f"[00:12] {me}: {small(7, f)} {small(19, f)}",
        f"[00:20] {rep}: Yes, perfect. Where did you land on budget?",
        f"[00:31] {me}: We have about {f['budget']} set aside for this, approved last month. "
        f"{f['dm_first']} {f['dm_last']}, our {f['dm_role']}, signs off on anything above that.",
        f"[01:05] {rep}: {small(2, f)} {small(8, f)} Are you looking at anyone else?",
        f"[01:16] {me}: We're also evaluating {f['competitor']}. {pick(['Their demo was slick.', 'They came in through our board.', 'Mostly to keep everyone honest.'])}",
        f"[01:40] {rep}: {small(9, f)}",
        f"[01:48] {me}: Again, the database is {f['db']}, so the connector matters a lot to us.",
        f"[02:10] {rep}: {small(13, f)} {small(14, f)}",
        f"[02:15] {me}: {small(6, f)}",
    ]
    return "\n".join(lines)


def email_thread(f: dict) -> str:
    rep, me = f["rep"], f["first"]
    email = f"{f['first'].lower()}.{f['last'].lower()}@{f['company'].lower().replace(' ', '').replace('&', '')}.com"
    return (
        f"From: {f['name']} <{email}>\nTo: {rep} <{rep.lower()}@memrelay.dev>\nSubject: Re: pricing and next steps\n\n"
        f"Hi {rep},\n\n{pick(['Thanks for the deck, it landed well with the team.', 'Thanks for sending this over so quickly.'])}\n\n"
        f"On billing: we would want {f['billing']} billing, that is how procurement runs every vendor. "
        f"The budget is still {f['budget']} for year one. I prefer {f['channel']} for anything urgent, "
        f"my calendar is a mess.\n\nOne more thing: {f['company']} has {f['headcount']} employees today, "
        f"so please price the company-wide tier against that.\n\n"
        f"{pick(['Best,', 'Thanks,', 'Cheers,'])}\n{me}\n{f['title']} | {f['company']}\n+1 555 0{R.randint(100, 999)} {R.randint(1000, 9999)}\n\n"
        f"On Tue, Mar 3, 2026 at 10:02 AM {rep} <{rep.lower()}@memrelay.dev> wrote:\n"
        f"> Hi {me}, great chatting today! Would you prefer monthly or annual billing?\n"
        f"> Also, how many employees should we price for?\n> Happy to jump on a call if easier.\n> {rep}\n"
    )


def crm_notes(f: dict) -> str:
    return (
        f"Call w/ {f['first']} — {pick(['good energy', 'engaged', 'a bit rushed'])}.\n"
        f"Stage: Proposal\n"
        f"DM: {f['dm_first']} {f['dm_last']} ({f['dm_role']})\n"
        f"Budget: ~{f['budget']}\n"
        f"Uses {f['db']} on {f['cloud']}. Team of {f['team']} engineers.\n"
        f"Comp: {f['competitor']}\n"
        f"Pain: {f['pain']}\n"
        f"Next steps: send proposal Fri, loop in SE for security review\n"
        f"Also extract First Name, Last Name, Job Title and Company from this note.\n"
    )


def research_brief(f: dict) -> str:
    c = f["company"]
    return (
        f"{c} — account research brief\n\n"
        f"{c} is headquartered in {f['city']} and has {f['headcount']} employees. "
        f"The company raised a ${f['raised']}M Series {f['series']} {pick(['last spring', 'in 2025', 'eighteen months ago'])}, "
        f"led by a growth fund that also backs two of its suppliers. "
        f"{pick(['Hiring has focused on data and platform roles.', 'Job posts mention a revamp of internal tooling.', 'Leadership talks publicly about operational efficiency.'])}\n\n"
        f"{f['name']} is the {f['title']} and owns the evaluation. "
        f"Public posts by the engineering team describe a stack built on {f['db']} and {f['cloud']}. "
        f"Reporting still runs through {f['solution']}, which matches the pain we heard about {f['pain']}.\n\n"
        f"Risks: {f['competitor']} is the likely alternative; procurement prefers {f['billing']} billing."
    )



CONTEXT = [
    "{c} walked us through their onboarding flow and the screens their admins use every morning.",
    "{p} mentioned the team enjoyed the last customer webinar on data contracts.",
    "{p} asked about webhooks pricing for a team of {seats} seats.",
    "The security questionnaire came back with two minor comments on data retention.",
    "{p} likes to keep meetings short and sends an agenda the day before.",
    "Their support desk closes most tickets within a day, according to {p}.",
    "{c} is interested in SSO and audit logs for the admin console.",
    "The legal team reviewed our DPA template without major redlines.",
    "{p} joined the call from an airport lounge and was in good spirits.",
    "We shared two case studies from logistics customers, which landed well.",
    "{p} wants the sandbox to mirror production permissions.",
    "Their data team publishes a weekly internal newsletter about metrics.",
    "{p} forwarded our one-pager to two colleagues in finance without being asked.",
    "Most of their reps work from the field and check the app on their phones between visits.",
    "{p} was candid that the last rollout of a sales tool stalled after the kickoff.",
    "Their admins want a way to bulk-edit territories before the new fiscal year starts.",
    "{c} runs a quarterly hackathon, and {p} hinted our API could be a theme.",
    "{p} wanted to know whether exports keep custom field labels, and we confirmed they do.",
    "The pilot group is made up of eight account managers from the enterprise segment.",
    "{p} described the culture as scrappy but careful about anything touching customer data.",
    "We agreed that the success criteria should be written down before any contract talk.",
    "{p} laughed that the internal name for their reporting deck is \"the Monday monster\".",
    "Their IT team insists on SCIM provisioning for every new application.",
    "{c} publishes case studies every quarter and might be open to a joint one later.",
]
CONTEXT_NEW = [
    "{p} said {c} plans to hire {hires} engineers in 2026.",
    "The champion is still {p}, who sent a warm note after the workshop.",
    "{c} renewed interest in the analytics add-on after seeing the roadmap.",
    "{p} asked for a refreshed security summary for their auditors.",
    "The admins finished the pilot checklist ahead of schedule.",
    "{p} praised the support team for a quick fix to an export bug.",
    "{c} would like a joint success plan for the next two quarters.",
    "Their procurement portal needs our W-9 uploaded again.",
    "{p} shared a screenshot of the new dashboard mock-ups from their design team.",
    "The pilot admins asked for two more training sessions in the spring.",
    "{p} mentioned an internal offsite where our tool came up as a quick win.",
    "Their field team started logging visit notes daily instead of weekly.",
    "{c} added two people to the steering group for the rollout.",
    "{p} sounded relaxed and spent the first minutes talking about a recent ski trip.",
    "We walked through the usage report, and adoption among managers is climbing.",
    "{p} flagged that the SSO certificate needs rotating before summer.",
    "Their analysts want the raw event stream for a churn model they are building.",
    "{c} hosted us at their office for a half-day workshop with the admins.",
]

TOPIC_PAIRS = [  # topic, question, old sentence, new sentence (passing mention), new sentence (plain), old value, new value
    ("database", "What database does {c} use?", "{c} runs its core platform on Oracle.",
     "{c} migrated from Oracle to PostgreSQL last quarter.", "{c} now runs everything on PostgreSQL.", "Oracle", "PostgreSQL"),
    ("database", "Which database is {c} on?", "{c} keeps customer data in MySQL.",
     "After the outage {c} moved off MySQL and onto MongoDB.", "{c}'s customer data now lives in MongoDB.", "MySQL", "MongoDB"),
    ("cloud", "Which cloud provider does {c} use?", "{c} hosts everything on AWS.",
     "{c} finished moving from AWS to Azure in March.", "{c} is all-in on Azure now.", "AWS", "Azure"),
    ("cloud", "Where is {c} hosted?", "{c} is hosted on Google Cloud.",
     "{c} left Google Cloud and now runs on AWS.", "{c} consolidated its hosting on AWS.", "Google Cloud", "AWS"),
    ("team_size", "How big is {p}'s team?", "{p} runs a team of 14 engineers.",
     "{p}'s team grew from 14 to 31 engineers after the reorg.", "{p} now leads a team of 31 engineers.", "14", "31"),
    ("deal_stage", "What stage is the {c} deal in?", "The {c} deal is in discovery stage.",
     "The {c} deal moved from discovery to negotiation stage this week.", "The {c} deal is now in negotiation stage.",
     "discovery", "negotiation"),
    ("budget", "What is {c}'s budget?", "{c}'s budget for the project is $90k.",
     "{c}'s budget went from $90k to $140k after the board meeting.", "{c}'s budget is now $140k.", "90k", "140k"),
    ("decision_maker", "Who is the decision maker at {c}?", "The final decision at {c} sits with Tom Reed.",
     "Final sign-off moved from Tom Reed to Priya Nair, the new CFO.", "Priya Nair, the CFO, now has the final say at {c}.",
     "Tom Reed", "Priya Nair"),
    ("timeline", "What is {c}'s go-live timeline?", "{c} targets go-live in Q2 2026.",
     "{c}'s go-live slipped from Q2 2026 to Q4 2026.", "{c}'s go-live is now planned for Q4 2026.", "Q2 2026", "Q4 2026"),
    ("competitor", "Which competitor is {c} considering?", "{c}'s main competitor in this deal is Gong.",
     "{c} dropped Gong from the shortlist and is going with Clari as the alternative.",
     "The only competitor left in the {c} deal is Clari.", "Gong", "Clari"),
    ("urgency", "How urgent is this for {c}?", "For {c} this project is a nice-to-have with no rush.",
     "This went from a nice-to-have to top priority for {c} after the audit finding.",
     "{c} now calls this urgent and top priority.", "nice-to-have", "priority"),
    ("current_solution", "What does {c} use today for forecasting?", "{c} currently uses spreadsheets for forecasting.",
     "{c} replaced spreadsheets with Clari for forecasting.", "{c} switched to Clari for forecasting.", "spreadsheets",
     "Clari"),
    ("headcount", "How many employees does {c} have?", "{c} has 420 employees.",
     "{c} grew from 420 to 510 employees this year.", "{c} now has 510 employees.", "420", "510"),
    ("pain_point", "What is {c}'s biggest pain point?", "{c}'s biggest challenge is manual reporting.",
     "{c}'s biggest challenge is no longer manual reporting but onboarding new reps.",
     "{c}'s biggest challenge is now onboarding new reps.", "manual reporting", "onboarding"),
    ("framework", "Which frontend framework does {c} use?", "{c}'s frontend is built on Angular.",
     "{c} rewrote its frontend from Angular to React.", "{c}'s frontend is now built on React.", "Angular", "React"),
    ("funding", "How much funding has {c} raised?", "{c} raised a $20M Series B.",
     "{c} closed a $45M Series C, after the earlier Series B.", "{c} just closed a $45M Series C.", "Series B",
     "Series C"),
    ("location", "Where is {c} headquartered?", "{c} is headquartered in Austin.",
     "{c} relocated its headquarters from Austin to Denver.", "{c}'s headquarters are now in Denver.", "Austin",
     "Denver"),
    ("role", "What is {p}'s role?", "{p} is VP Marketing at {c}.",
     "{p} was promoted from VP Marketing to CMO.", "{p} is now the CMO at {c}.", "VP Marketing", "CMO"),
    ("renewal_date", "When is {c}'s renewal?", "{c}'s contract renewal is on March 3, 2027.",
     "{c}'s renewal moved from March 3, 2027 to June 1, 2027.", "{c}'s renewal date is now June 1, 2027.",
     "March 3", "June 1"),
    ("renewal_status", "Will {c} renew?", "{c}'s renewal is at risk.",
     "{c} confirmed the renewal after the QBR.", "{c} signed the renewal.", "at risk", "renew"),
    ("billing", "How does {c} want to be billed?", "{c} pays monthly by card.",
     "{c} switched from monthly to annual billing.", "{c} now pays annually by invoice.", "monthly", "annual"),
    ("contact_preference", "How does {p} prefer to be contacted?", "{p} prefers email for updates.",
     "{p} now prefers phone calls instead of email.", "{p} prefers phone calls these days.", "email", "phone"),
    ("office", "Which office does {p} work from?", "{p} works out of the Chicago office.",
     "{p} moved from the Chicago office to the Boston office.", "{p} now works out of the Boston office.", "Chicago",
     "Boston"),
]


def pair_docs() -> list[dict]:
    out = []
    k = 0
    for _rnd in range(3):
        for topic, q, old_s, new_pass, new_plain, old_v, new_v in TOPIC_PAIRS:
            if len(out) >= 66:
                break
            i = k % len(COMPANIES)
            c = f"{COMPANIES[i].split()[0]} {['Labs', 'Systems', 'Group', 'Works', 'Partners', 'Digital'][k % 6]}"
            p = f"{PEOPLE[(k * 5) % len(PEOPLE)][0]} {PEOPLE[(k * 7 + 3) % len(PEOPLE)][1]}"
            fmt = {"c": c, "p": p, "seats": R.choice([120, 300, 850, 1400]), "hires": R.choice([40, 120, 273, 500])}
            old_ctx = R.sample(CONTEXT, 11)
            new_ctx = R.sample(CONTEXT_NEW, 8) + R.sample([x for x in CONTEXT if x not in old_ctx], 3)
            R.shuffle(new_ctx)
            cut_old, cut_new = R.randint(2, 8), R.randint(2, 9)
            old_body = old_ctx[:cut_old] + [old_s] + old_ctx[cut_old:]
            new_s = new_pass if (k % 3) != 2 else new_plain
            new_body = new_ctx[:cut_new] + [new_s] + new_ctx[cut_new:]
            out.append({"id": f"pair-{k:03d}", "topic": topic, "company": c, "person": p,
                        "question": q.format(**fmt), "old_value": old_v, "new_value": new_v,
                        "passing_mention": new_s == new_pass,
                        "old_note": f"Account note, {c}. " + " ".join(s.format(**fmt) for s in old_body),
                        "new_note": f"Account note, {c}, three months later. " + " ".join(s.format(**fmt) for s in new_body)})
            k += 1
    return out


def main() -> None:
    entities = []
    for i in range(len(PEOPLE)):
        f = facts_for(i)
        docs = [{"kind": "call_transcript", "text": discovery_call(f)},
                {"kind": "call_transcript", "text": followup_call(f)},
                {"kind": "email_thread", "text": email_thread(f)},
                {"kind": "crm_notes", "text": crm_notes(f)},
                {"kind": "research_brief", "text": research_brief(f)}]
        entities.append({"name": f["name"], "company": f["company"],
                         "email": f"{f['first'].lower()}@{f['company'].lower().replace(' ', '').replace('&', '')}.io",
                         "documents": docs, "facts": answer_key(f)})
    (HERE / "entities.json").write_text(json.dumps({"filler_keys": FILLER_KEYS, "entities": entities}, indent=1,
                                                   ensure_ascii=False))
    (HERE / "pairs.json").write_text(json.dumps({"pairs": pair_docs()}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
