"""Dedup and fresh-fact precedence: when two memories say the same thing, and when a newer one
replaces an older one.

Cosine alone cannot tell "Deal value: $250,000" from "Deal value: $1,000,000" (~0.91 with WordLlama),
so both decisions also compare the values a sentence carries: numbers, names, deal stages, roles and
whether it is negated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

from memrelay.engine.domain.extraction.catalog import find_deal_stages, find_roles, find_technologies
from memrelay.engine.domain.extraction.keywords import content_stems, tokens
from memrelay.engine.domain.extraction.lexicon import (
    DEAL_STAGE_CUES,
    HQ_CUES,
    MONEY_SLOTS,
    NEGATION_PHRASES,
    NEGATIONS,
    NUMBER_WORDS,
    PLAN_CUES,
    PRICING_PLANS,
    STOPWORDS,
    TECH_SLOT_WORDS,
    VENDOR_CUES,
)
from memrelay.engine.domain.extraction.quantities import canonical_number, find_amounts, number_tokens
from memrelay.engine.domain.text_gates import cannot_match, gated_search, lower_or_none

DUPLICATE_COSINE = 0.95
# Same-topic pairs are lexically far apart with a static embedding ("We use AWS" / "They moved
# everything to Azure last year" is 0.28, "Headquartered in Austin" / "relocated their HQ to Denver"
# 0.19), while the topic key already requires the same slot; the cosine floor only rejects pairs that
# share a keyword by accident.
RELATED_COSINE = 0.15
SUPERSEDING_TECH_SLOTS = ("database", "cloud", "crm", "framework", "data_warehouse", "language")
# Stages that need no "deal"/"stage" word nearby to be read as a deal stage.
_SELF_EVIDENT_STAGES = frozenset({"closed_won", "closed_lost", "contract_sent"})
_ROLE_ACRONYMS = frozenset("ceo cto cfo coo cmo cro cio ciso cpo vp svp evp hr it".split())
_HQ_WORDS = frozenset(w for cue in HQ_CUES for w in cue.split()) | {"headquarter", "office"}
_NAME_RE = re.compile(r"(?<![\w'’])[A-Za-z][A-Za-z0-9]*(?:[.&'’-][A-Za-z0-9]+)*")
_POSSESSIVE_END_RE = re.compile(r"['’]s$")
_OWNER_END_RE = re.compile(r"['’]s?$")
_POSSESSIVE_BREAK_RE = re.compile(r"(['’]s?)(\s)")
_COMMON_CAPITALISED = frozenset(
    """i met deal budget meeting call notes update note next last today yesterday tomorrow please thanks
    hi hello also however after before during since until while because although though yes no ok
    okay great good currently recently now still just""".split()
)


@dataclass(frozen=True)
class Facets:
    """The values that distinguish one statement from a near-identical one."""

    numbers: frozenset[str]
    currencies: frozenset[str]
    names: frozenset[str]
    stages: frozenset[str]
    roles: frozenset[str]
    negated: bool


def numbers_in(text: str) -> set[str]:
    """Canonical quantities: '$250,000' and '$250k' -> '250000', '1M' -> '1000000', '15%', years, 'q1'."""
    return number_tokens(text)


def proper_nouns(text: str) -> set[str]:
    """Lower-cased names: capitalised words not at a sentence start (or at one, if not a common word),
    CamelCase and ALL-CAPS tokens, and known technology names in any case."""
    found: set[str] = set()
    for m in _NAME_RE.finditer(text):
        word = _POSSESSIVE_END_RE.sub("", m.group(0))
        if len(word) < 2 or not word[0].isupper():
            continue
        lower = word.lower()
        at_start = _at_sentence_start(text, m.start())
        distinctive = word.isupper() or any(c.isupper() for c in word[1:])
        if distinctive or not at_start or (lower not in STOPWORDS and lower not in _COMMON_CAPITALISED):
            found.add(lower)
    found |= {t.name.lower() for t in find_technologies(text)}
    return found


def _at_sentence_start(text: str, pos: int) -> bool:
    i = pos - 1
    while i >= 0 and text[i].isspace():
        if text[i] == "\n":
            return True
        i -= 1
    return i < 0 or text[i] in ".!?:;•-*(\"'"


@lru_cache(maxsize=4096)
def facets(text: str) -> Facets:
    """Numbers, currencies, names, deal stages, roles and negation of ``text`` (cached)."""
    return Facets(
        numbers=frozenset(numbers_in(text)),
        currencies=frozenset(a.currency for a in find_amounts(text) if a.currency),
        names=frozenset(proper_nouns(text)),
        stages=frozenset(m.name for m in find_deal_stages(text)),
        roles=frozenset(m.name for m in find_roles(text)),
        negated=is_negated(text),
    )


def is_negated(text: str) -> bool:
    """True if the statement is negated ("not", "don't", "no longer", "stopped using" ...)."""
    words = tokens(text)
    lowered = text.lower()
    return any(w in NEGATIONS or w.endswith("n't") for w in words) or any(
        p in lowered for p in NEGATION_PHRASES
    )


def is_near_duplicate(a: str, b: str, cosine: float, threshold: float = DUPLICATE_COSINE) -> bool:
    """True only for near-verbatim restatements: the same numbers, currencies, names, deal stages,
    roles and polarity, and either cosine >= threshold or the same words once numbers are canonical
    ("Deal value: $250,000" / "deal value: $250k")."""
    if facets(a) != facets(b):
        return False
    return cosine >= threshold or normal_form(a) == normal_form(b) or restates(a, b)


RESTATEMENT_OVERLAP = 0.75


def restates(a: str, b: str) -> bool:
    """The same content words (Jaccard of content stems >= 0.75): "Sarah Chen uses Oracle." /
    "Sarah Chen's team uses Oracle." — only meaningful once the facets (numbers, names, ...) agree."""
    sa, sb = set(content_stems(a)), set(content_stems(b))
    return bool(sa and sb) and len(sa & sb) / len(sa | sb) >= RESTATEMENT_OVERLAP


def normal_form(text: str) -> str:
    """Lower-case words with every quantity in canonical form and punctuation dropped."""
    pieces, pos = [], 0
    for amount in find_amounts(text):
        number = canonical_number(amount.value, percent=amount.percent)
        pieces += [text[pos : amount.start], f" {amount.currency or ''} {number} "]
        pos = amount.end
    return " ".join(tokens("".join(pieces) + text[pos:]))


# --- topics: which statements a newer one may replace ----------------------------------------------------------
#
# A topic key names one slot of the record ("technology:database", "headcount", "role:sarah", "renewal:status");
# each key carries the statement's *current* values in that slot (after dropping values mentioned in passing as
# former ones: "migrated from Oracle to PostgreSQL" -> {postgresql}, former {oracle}). A newer statement replaces
# an older one only on a shared key, when it retires the older value explicitly or both name different values.

_ASKED_RE = re.compile(r"\b(?:asked (?:about|whether|if|for|how|what)|wondering|inquired|curious (?:about|whether|if)|"
                       r"wants to know|question about|asking about|asks about|might|maybe|could potentially|"
                       r"if (?:they|she|he|we)|hypothetically)\b", re.IGNORECASE)
_PLAN_RE = re.compile(r"\b(?:plan(?:s|ned|ning)? to|will|hire|hiring|hires|expects? to|expected to|aims? to|targets?|"
                      r"targeting|goal|forecast|projected|next year|double|add(?:ing)?|open roles|headcount plan)\b",
                      re.IGNORECASE)
_ADDITIVE_RE = re.compile(r"\b(?:also|as well|in addition|additionally|alongside|another|besides)\b", re.IGNORECASE)
_FORMER_RE = re.compile(
    r"\b(?:from|replac(?:e|es|ed|ing)|instead of|previously(?: on| using| with)?|formerly(?: on)?|used to (?:use|run|be(?: on)?)|"
    r"no longer(?: uses?| using| on| with| runs?)?|moved away from|switched away from|dropped|ditched|retired|"
    r"sunset(?:ted)?|migrated off|moved off|ruled out|off of|phasing out|phased out|rather than|not|left|leaving|"
    r"abandoned|exited|moved out of|got off|walked away from|churned from|outgrew)\s+"
    r"(?:the\s+|their\s+|its\s+|his\s+|her\s+|a\s+|an\s+|about\s+|around\s+)?"
    r"(?P<value>(?:(?!\b(?:to|into|for|with|and|but|in|on|at|after|since|because|so|now|this|last|by)\b)[^\s,;.()]+"
    r"(?:\.\d+)?\s*){1,4})",
    re.IGNORECASE,
)
_TODO_RE = re.compile(r"^\s*(?:At [^,;:]{1,60},\s*)?(?:next(?: steps?)?|to-?dos?|to do|action items?|follow[- ]ups?)"
                      r"\s*[:\-–—=>]", re.IGNORECASE)
_YEARISH = re.compile(r"^(?:19|20)\d\d$")
_MONTHS = ("january february march april may june july august september october november december "
           "jan feb mar apr jun jul aug sep sept oct nov dec").split()
_WHEN_RE = re.compile(r"\b(?:q[1-4](?:\s*(?:fy)?\s*'?\d{2,4})?|h[12](?:\s*\d{4})?|(?:" + "|".join(_MONTHS) +
                      r")\.?(?:\s+\d{1,2}(?:st|nd|rd|th)?)?(?:,?\s+\d{4})?|\d{4}-\d{2}-\d{2}|end of (?:the )?"
                      r"(?:year|quarter|month|q[1-4])|(?:19|20)\d\d)\b", re.IGNORECASE)
_TITLE_AREAS = sorted(
    {*(a for a in ("sales marketing engineering product finance operations people hr it security data growth revenue "
                   "partnerships design legal procurement support platform analytics infrastructure strategy "
                   "communications brand technology digital innovation devops revops talent").split()),
     "customer success", "revenue operations", "sales operations", "marketing operations", "demand generation",
     "information technology", "data science", "business development", "customer experience"},
    key=len, reverse=True)
_TITLE_WORDS = (r"(?:(?:senior|sr\.?|principal|lead|staff|global|regional|group|associate|executive|interim|deputy)\s+)?"
                r"(?:vp|svp|evp|vice president|head|director|manager|chief [a-z]+ officer|ceo|cto|cfo|coo|cmo|cro|"
                r"cio|ciso|cpo|founder|co-founder|president|engineer|architect|analyst|lead|partner|owner)"
                r"(?:,?\s+(?:of\s+|for\s+)?(?:" + "|".join(_TITLE_AREAS) + r"))?")
_ROLE_PRED_RE = re.compile(
    r"^(?!(?:the|this|that|our|their|his|her|its|an?|we|they|she|he|it|at)\b)(?P<who>[A-Z][^\W\d_]+)(?:\s+[A-Z][^\W\d_]+)?(?:['’]s (?:title|role|job title|position)|,)?"
    r"(?:\s+(?:is|was|has|have|been|became|becomes|got|promoted|moved|stepped|took|over|joined|serves|now|the|a|an|"
    r"our|their|new|to|as|from|into|up|recently|just|officially|named|appointed|changed|role|title|of)\b){0,7}"
    r"[\s,]*(?P<title>" + _TITLE_WORDS + r")\b",
    re.IGNORECASE,
)
_TITLE_RE = re.compile(r"\b" + _TITLE_WORDS + r"\b", re.IGNORECASE)
_HEADCOUNT_RE = re.compile(
    r"(?:\b(?P<n1>\d[\d,.]*\s*k?)\+?\s+(?:full[- ]time\s+)?(?:employees|staff|people|ftes?|workers|headcount)\b"
    r"|\b(?:headcount|employees|workforce|staff|employee count)\b[^.;\d]{0,25}?(?P<n2>\d[\d,.]*\s*k?)\b)",
    re.IGNORECASE)
_TEAM_RE = re.compile(
    r"(?:\bteam of (?:about |around |roughly |~)?(?P<n1>\d[\d,]*)(?!\s*(?:seats|licen[cs]es|users|accounts))\b"
    r"|\b(?P<n2>\d[\d,]*)\+?\s+(?:engineers|developers|devs|reps|sales reps|sdrs|aes|analysts|marketers|data scientists"
    r"|designers|support agents|agents|recruiters|people on (?:the|their|her|his|its) team)\b"
    r"|\bteam(?: size)?(?: is| of| at| has grown to| grew to| shrank to| now| :)+\s*(?:about |around |~)?(?P<n3>\d[\d,]*)\b"
    r"(?!\s*(?:employees|staff|ftes?)\b))",
    re.IGNORECASE)
_DM_RE = re.compile(r"\b(?:decision[- ]maker|final say|final decision|signs? off|sign-off|signoff|economic buyer|"
                    r"approver|approves the|budget holder|holds the budget|signing authority|final approval)\b", re.I)
_TIMELINE_RE = re.compile(r"\b(?:timeline|go-live|go live|golive|launch|rollout|roll out|deadline|decision by|"
                          r"decide by|sign by|target date|kick-?off|live by|cutover|implementation date|start date|"
                          r"decision date|pushed (?:back|out)|moved (?:up|out)|slipp?ed)\b", re.I)
_COMPETITOR_RE = re.compile(r"\b(?:competitors?|competing|shortlist(?:ed)?|short-list|bake-?off|up against|"
                            r"going with|leaning toward|leaning towards|incumbent|compar(?:ed|ing) (?:us|them) "
                            r"(?:with|to|against)|versus|vs\.?|alternative to|head-to-head)\b", re.I)
_URGENCY = {
    "high": r"\b(?:urgent|asap|critical|top priority|high priority|immediately|burning|must-have this quarter|"
            r"fire drill|can'?t wait)\b",
    "low": r"\b(?:no rush|nice[- ]to[- ]have|back burner|back-burner|low priority|deprioriti[sz]ed|not urgent|"
           r"not a priority|can wait|on ice)\b",
    "medium": r"\b(?:medium priority|moderate(?:ly)? (?:urgent|priority)|mid priority)\b",
}
_URGENCY_RE = {k: re.compile(v, re.I) for k, v in _URGENCY.items()}
_URGENCY_CUE = re.compile(r"\b(?:urgen|priorit|asap|rush|back[- ]burner|nice[- ]to[- ]have|critical|burning|on ice|"
                          r"can wait|can'?t wait|fire drill)", re.I)
_CURRENT_RE = re.compile(r"\b(?:current solution|current (?:tool|vendor|system|platform|setup|process)|currently "
                         r"(?:use|uses|using|on|runs?|relies? on)|in-house|homegrown|home-grown|spreadsheets?|"
                         r"existing (?:tool|vendor|solution|system|platform)|today (?:they|she|he|we) use|"
                         r"relies on|relying on|switched to|replaced)\b", re.I)
_SOLUTION_WORDS = ("spreadsheets", "excel", "in-house", "homegrown", "home-grown", "google sheets", "airtable")
_SOLUTION_RES = tuple((w, re.compile(rf"\b{re.escape(w)}\b", re.IGNORECASE)) for w in _SOLUTION_WORDS)
_PAIN_RE = re.compile(r"\b(?:biggest|main|primary|top|number one|#1|key|core|major|chief|greatest)\s+(?:pain(?: point)?|"
                      r"challenge|problem|issue|headache|bottleneck|concern|blocker|frustration|gap)s?\b"
                      r"|\bpain points? (?:is|are|:)", re.I)
_FUNDING_RE = re.compile(r"\b(?:raised|funding|series [a-f]\b|seed round|pre-seed|series-[a-f]|funding round|"
                         r"closed a round|venture round|backed by)", re.I)
_SERIES_RE = re.compile(r"\b(?:series[- ]([a-f])|(seed|pre-seed))\b", re.I)
_RENEWAL_RE = re.compile(r"\b(?:renew(?!ed (?:interest|focus|push|energy|attention|enthusiasm))\w*|contract (?:end|ends|expires|expiry)|expires|expiry|up for renewal)\b", re.I)
_RENEWAL_STATUS = {
    "churning": r"\b(?:not (?:going to )?renew\w*|won'?t renew|will not renew|cancel\w*|churn\w*|not renewing|"
                r"let (?:it|the contract) lapse)\b",
    "at_risk": r"\b(?:at risk|in jeopardy|undecided|on the fence|unsure|uncertain|wobbly)\b",
    "renewing": r"\b(?:will renew|committed to renew\w*|confirmed (?:the )?renewal|signed the renewal|renewed|"
                r"on track to renew|plans? to renew|renewing|verbal yes on (?:the )?renewal|auto-renew\w*)\b",
}
_RENEWAL_STATUS_RE = {k: re.compile(v, re.I) for k, v in _RENEWAL_STATUS.items()}
_BILLING_RE = re.compile(r"\b(?:bill\w*|pay|pays|paying|paid|invoic\w*|payments?)\b", re.I)
_FREQUENCY = {"monthly": r"\b(?:monthly|month-to-month|per month|every month|each month)\b",
              "annual": r"\b(?:annual(?:ly)?|yearly|per year|every year|once a year|upfront for the year)\b",
              "quarterly": r"\b(?:quarterly|per quarter|every quarter)\b"}
_FREQUENCY_RE = {k: re.compile(v, re.I) for k, v in _FREQUENCY.items()}
_PREFER_RE = re.compile(r"\b(?:prefer\w*|best way to reach|best reached|reach (?:her|him|them|me) (?:by|via|on)|"
                        r"contact (?:her|him|them)? ?(?:via|by|over)|rather (?:get|receive|be contacted)|"
                        r"likes to be contacted|channel)\b", re.I)
_CHANNELS = {"email": r"\b(?:e-?mails?)\b", "phone": r"\b(?:phone|calls?|ring)\b", "sms": r"\b(?:text(?:s|ing)?|sms)\b",
             "slack": r"\bslack\b", "linkedin": r"\blinkedin\b", "whatsapp": r"\bwhatsapp\b",
             "teams": r"\bteams\b", "in_person": r"\bin person\b", "video": r"\b(?:video|zoom)\b"}
_CHANNEL_RE = {k: re.compile(v, re.I) for k, v in _CHANNELS.items()}
_OFFICE_RE = re.compile(r"\b(?:works?|working|worked|based|sits?|moved|relocated|transferred|transfers|moving)\b"
                        r"[^.;]{0,40}\boffice\b", re.I)
_OFFICE_NAME_RE = re.compile(r"(?:\b(?P<a>[A-Z][\w-]+(?:\s+[A-Z][\w-]+)?)\s+office\b|\boffice (?:in|to|at) (?P<b>[A-Z][\w-]+))")
# "has to approve any new vendor", "vendor approval", "a vendor risk review": vendors in general, not who theirs is.
_GENERIC_VENDOR_RE = re.compile(
    r"\b(?:any|new|a|an|every|another|each|potential|prospective|third-party|one|single|fewer|more|other)\s+(?:new\s+)?"
    r"(?:vendor|supplier|provider)s?\b"
    r"|\b(?:vendor|supplier|provider)s?\s+(?:approval|review|risk|management|assessment|onboarding|selection|"
    r"consolidation|questionnaire|security|due diligence|list|process)\b", re.I)
_NAME_NOISE = frozenset("""the a an team team's company office hq headquarters budget stage deal cfo ceo cto coo cmo cro vp
    head director manager chief officer decision maker final say sign off q1 q2 q3 q4 series seed january february
    march april may june july august september october november december monday tuesday wednesday thursday friday
    now today currently""".split())


# --- broad cues: what a statement answers, for ranking only ------------------------------------------------------
# Recall ranks the memory that answers a topic question first (recall.py), and the newest such memory before older
# ones (newer_value_on); neither hides anything, so it reads statements more broadly than supersession, which hides a
# memory and needs the strict cues above: "Ama Owusu now owns the tooling budget" answers "Who makes the buying
# decision?", "the IR team shrank from three to one" states a team size, "we're in security review now" a deal stage.
_FORMER_EXTRA_RE = re.compile(
    r"\b(?:solved|fixed|resolved|decided against|waiting until|instead of waiting (?:for|until)|after|the old)\s+"
    r"(?:the\s+|their\s+|its\s+|his\s+|her\s+|a\s+|an\s+)?"
    r"(?P<value>(?:(?!\b(?:to|into|for|with|and|but|in|on|at|after|since|because|so|now|this|last|by|went|was|"
    r"were)\b)[^\s,;.()]+\s*){1,4})", re.IGNORECASE)
# A value named before the verb that retires it: "Karen Holt left the group", "the old SQL Server box was switched
# off", "Dana stepped down" (a capitalised name, at most three words between it and the verb).
_FORMER_BEFORE_RE = re.compile(
    r"(?<![\w'’])(?P<value>(?-i:[A-Z][\w.+#-]*)(?:\s+(?-i:[A-Z][\w.+#-]*)){0,2})(?:\s+[a-z][\w-]*){0,3}?\s+"
    r"(?:has |had |have |just |recently |then )?(?:left|departed|resigned|retired|stepped (?:down|back|away)|"
    r"(?:was|were|has been|have been|got|is being|are being) (?:switched off|turned off|shut down|decommissioned|"
    r"retired|sunset(?:ted)?|phased out|replaced|dropped|removed|cancel+ed))\b")
_FUTURE_RE = re.compile(r"(?:next|this|the coming|mid|early|late)\b", re.I)
_SEASON_RE = re.compile(r"\b(?:(?:this|next|early|late|mid)[- ](?:spring|summer|autumn|fall|winter)|"
                        r"(?<!last )(?<!past )(?:spring|summer|autumn|winter)(?:\s+(?:19|20)\d\d)?)\b", re.IGNORECASE)
_NUM = r"(?:\d[\d,]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty)"
_NOT_TEAM = r"(?!\s*(?:seats|licen[cs]es|users|accounts|employees|staff|ftes?|people (?:in|across|at)|in total))"
_TEAM_EXTRA_RE = re.compile(
    r"\bteam of (?:about |around |roughly |~)?(?P<n1>" + _NUM + r")\b" + _NOT_TEAM +
    r"|\bteam(?: size)?(?:\s+(?:is|has|have|had|grown|grew|shrank|shrunk|went|down|back|dropped|now|to|from(?: " + _NUM +
    r" to)?))+\s+(?:about |around |~)?(?P<n3>" + _NUM + r")\b" + _NOT_TEAM, re.IGNORECASE)
_DM_EXTRA_RE = re.compile(
    r"\b(?:makes? (?:the |all |every )?(?:final |purchasing |buying |purchase |tooling )?decisions?|decides on|"
    r"owns the (?:\w+ )?budget|approves (?:every|all|any)\b|delegated (?:\w+ ){0,3}(?:purchases|purchasing|decisions|"
    r"approvals?|spend)|(?:purchases?|spend|contracts?|tools?)\b[^.;]{0,40}\b(?:goes|go|needs? to go) to the "
    r"(?:board|committee))", re.I)
_TIMELINE_EXTRA_RE = re.compile(
    r"\b(?:timing|postpone\w*|delay\w*|start(?:s|ing)? (?:using|in|on|from)|using it (?:from|by|in)|ready by|"
    r"(?:up and )?running (?:by|this|next|before|in)|in place (?:by|before))\b", re.I)
_COMPETITOR_EXTRA_RE = re.compile(
    r"\b(?:competitive (?:picture|landscape|situation|set)|comparison with|side-by-side with|moved on to|"
    r"(?:looking at|considering|evaluating|trial(?:l?ing)?|piloting)(?:\s+(?-i:[a-z])[\w-]*){0,2}\s+(?:the\s+)?"
    r"(?-i:[A-Z]))", re.I)
_URGENCY_EXTRA = {"high": r"\b(?:immediate need|pressing|top of (?:the|her|his|their) list)\b",
                  "low": r"\b(?:on hold|pressure is off|shelved|parked|exploratory)\b"}
_URGENCY_EXTRA_RE = {k: re.compile(v, re.I) for k, v in _URGENCY_EXTRA.items()}
_URGENCY_BROAD_RE = {k: re.compile(f"{v}|{_URGENCY_EXTRA[k]}" if k in _URGENCY_EXTRA else v, re.I)
                     for k, v in _URGENCY.items()}
_CURRENT_EXTRA_RE = re.compile(r"\b(?:rely on|adopted|system of record|(?:track|manage|keep)s? (?:\w+ ){0,3}in)\b",
                               re.I)
_PAIN_EXTRA_RE = re.compile(
    r"\b(?:problem|pain|concern|challenge|focus|headache)\b[^.;:]{0,30}?\b(?:has |have )?(?:shifted|moved|changed|"
    r"turned) to\b|\b(?:focus|concern|problem) is now\b|\bthe (?:problem|challenge|issue) (?:\w+ ){0,3}(?:wants|needs|"
    r"is trying|tries|hopes) to (?:solve|fix|address)", re.I)
_FUNDING_EXTRA_RE = re.compile(
    r"\b(?:acquired by|was acquired|were acquired|private equity|bootstrapped|self-funded|outside investors|"
    r"venture investors|majority investment|went public|ipo)\b", re.I)
_FUNDING_STATUS = {"acquired": r"\b(?:acquired by|was acquired|were acquired|acquisition by)\b",
                   "private equity": r"\b(?:private equity|pe-backed|majority investment)\b",
                   "bootstrapped": r"\b(?:bootstrapped|self-funded|no outside investors)\b",
                   "public": r"\b(?:went public|ipo|publicly listed)\b"}
_FUNDING_STATUS_RE = {k: re.compile(v, re.I) for k, v in _FUNDING_STATUS.items()}
_BUDGET_EXTRA = ("budgets", "allocation", "allocated", "set aside", "earmarked", "available for", "to spend")
_MONEY_SLOTS_BROAD = {**MONEY_SLOTS, "budget": (*MONEY_SLOTS["budget"], *_BUDGET_EXTRA)}
# (" phrase ", slot) of the money slots, longest phrase first ("deal" alone is read last), strict and broad
_MONEY_PHRASES = {broad: [(f" {p} ", slot) for p, slot in sorted(
    ((p, slot) for slot, ps in (_MONEY_SLOTS_BROAD if broad else MONEY_SLOTS).items() for p in ps if p != "deal"),
    key=lambda x: -len(x[0]))] for broad in (False, True)}
_BODY_RE = re.compile(r"\bthe (?:(?:investment |steering |buying )?committee|board|procurement (?:team|office))\b", re.I)
_STAGE_POSITION_RE = re.compile(r"\b(?:in|into|at|to|reached|entered|marked(?: as)?|now)\s+(?:the\s+)?$", re.I)
# Stages sales notes name that the deal-stage lexicon does not (a stage position must introduce them).
_EXTRA_STAGES = {"security_review": re.compile(r"\b(?:security|infosec|it security) (?:review|assessment)\b", re.I),
                 "procurement": re.compile(r"\bprocurement(?: review)?\b", re.I),
                 "pilot": re.compile(r"\b(?:pilot(?: phase| stage)?|proof of concept|poc)\b"
                                     r"(?!\s+(?:the|it|our|their|this|with|a|an)\b)", re.I)}  # not "to pilot it"


# A research brief's description of an organisation names where it is: "Orbis is a family-owned metal parts manufacturer
# in Gdansk", "Kestrel is a two-tier district council in the West Country".
_ORG_IN_PLACE_RE = re.compile(
    r"\b(?:is|was) (?:a|an)\b[^.;:]{0,80}?\b(?:company|firm|agency|manufacturer|brand|council|studio|business|provider|"
    r"startup|start-up|maker|group|bank|retailer|distributor|consultancy|organi[sz]ation|operator|charity|university|"
    r"school|hospital|clinic|lab|laboratory|insurer|publisher|studio|fund|authority)\b[^.;:]{0,60}?\b(?:based in|"
    r"headquartered in|in)\s+(?:the\s+)?(?P<place>(?-i:[A-Z][\w'’-]+)(?:\s+(?-i:[A-Z][\w'’-]+)){0,2})", re.I)
# A title of capitalised words the title lexicon does not list: "Ewa Lis is the Commercial Director", "Joana Reis:
# Client Services Director since 2021" (ranking only: who holds which title).
_NAMED_TITLE_RE = re.compile(
    r"^\s*(?P<who>(?-i:[A-Z])[^\W\d_]+)(?:\s+(?-i:[A-Z])[^\W\d_-]*(?:-(?-i:[A-Z])[^\W\d_]+)?)?\s*(?:[:,]|\s+(?:is|was|has been|"
    r"became|serves as|works as)(?:\s+(?:the|a|an|our|their|now|currently))*)\s+(?P<title>(?:(?-i:[A-Z])[\w&-]*\s+(?:of\s+|&\s+)?)"
    r"{0,3}(?-i:Director|Manager|Officer|Lead|Head|Partner|Engineer|Consultant|Specialist|Coordinator|Administrator|"
    r"Executive|Analyst|Advisor|Adviser|President|VP|Founder|Owner)(?:\s+of\s+(?-i:[A-Z])[\w&-]*(?:\s+(?-i:[A-Z])[\w&-]*)?)?)")


PRIMED_MAX = 16384
T = TypeVar("T")


class _Primable(Generic[T]):
    """A reading of a text, cached per text (``lru_cache``), that can also be handed in ready-made: read back with a
    memory (see :mod:`memrelay.engine.domain.readings`) instead of taken from the text again. Keeps the latest
    ``PRIMED_MAX`` handed in."""

    def __init__(self, read: Callable[[str], T]):
        self.read = lru_cache(maxsize=16384)(read)
        self.primed: dict[str, T] = {}
        self.__doc__ = read.__doc__

    def __call__(self, text: str) -> T:
        got = self.primed.get(text)
        return got if got is not None else self.read(text)

    def prime(self, text: str, value: T) -> None:
        """Take ``value`` as this reading of ``text``."""
        primed = self.primed
        if text in primed:
            return
        if len(primed) >= PRIMED_MAX:
            try:
                del primed[next(iter(primed))]
            except (KeyError, StopIteration, RuntimeError):  # another thread evicted it first
                pass
        primed[text] = value


@dataclass(frozen=True)
class TopicValues:
    """A statement's values in one topic slot: ``current`` (what it says now) and ``former`` (in passing)."""

    current: frozenset[str]
    former: frozenset[str]


def _former_spans(text: str, broad: bool = False) -> list[tuple[int, int]]:
    low = lower_or_none(text)
    spans = [] if cannot_match(_FORMER_RE, low) else [(m.start("value"), m.end("value")) for m in _FORMER_RE.finditer(text)]
    if not broad:
        return spans
    spans = [(a, b) for a, b in spans if not _FUTURE_RE.match(text, a)]  # "using it from next spring": a start
    if not cannot_match(_FORMER_EXTRA_RE, low):
        spans += [(m.start("value"), m.end("value")) for m in _FORMER_EXTRA_RE.finditer(text)]
    if not cannot_match(_FORMER_BEFORE_RE, low):
        spans += [(m.start("value"), m.end("value")) for m in _FORMER_BEFORE_RE.finditer(text)
                  if not _at_sentence_start(text, m.start("value")) or " " in m.group("value")]
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _split_former(text: str, broad: bool = False) -> tuple[str, str]:
    """(text with former values blanked, the former values' text)."""
    spans = _former_spans(text, broad)
    if not spans:
        return text, ""
    current, former, pos = [], [], 0
    for a, b in spans:
        current.append(text[pos:a])
        current.append(" " * (b - a))
        former.append(text[a:b])
        pos = b
    current.append(text[pos:])
    return "".join(current), " ; ".join(former)


def _counts(text: str) -> frozenset[str]:
    return frozenset(canonical_number(a.value) for a in find_amounts(text)
                     if not a.percent and not (not a.currency and not a.magnitude and _YEARISH.match(a.text)))


def _money(text: str) -> frozenset[str]:
    return frozenset(canonical_number(a.value) for a in find_amounts(text) if a.currency or a.magnitude)


def _names(text: str) -> frozenset[str]:
    return frozenset(n for n in proper_nouns(text) if n not in _NAME_NOISE and n not in _ROLE_ACRONYMS)


_CAP_RUN_RE = re.compile(r"(?<![\w'’])[A-Z][\w&'’.-]*(?:\s+[A-Z][\w&'’.-]*)*")


_ANCHOR_RE = re.compile(r"^\s*At [^,;:]{1,60},\s*")  # "At Lumen Systems, ..." (the extractor's setting)


def _people(text: str) -> frozenset[str]:
    """Person-like names: runs of two or three capitalised words ("Priya Nair"), possessive dropped; the
    extractor's "At <company>," setting is not a person."""
    out = set()
    text = _ANCHOR_RE.sub("", text)
    text = _POSSESSIVE_BREAK_RE.sub(r"\1 | ", text)  # a possessive ends a name run
    for m in _CAP_RUN_RE.finditer(text):
        if _OWNER_END_RE.search(m.group(0)):
            continue  # "Marcus Oyelaran's decision maker", "Pine Robotics's CEO": the owner, not the value
        parts = [_POSSESSIVE_END_RE.sub("", w.strip(".")).lower() for w in m.group(0).split()]
        parts = [w for w in parts if w not in _NAME_NOISE and w not in _ROLE_ACRONYMS]
        if 2 <= len(parts) <= 3:
            out.add(" ".join(parts))
    return frozenset(out)


_DATE_RE = re.compile(r"\b(?:q[1-4]|h[12]|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?|"
                      r"\d{1,2}/\d{1,2}(?:/\d{2,4})?|\d{4}-\d{2}-\d{2}|(?:19|20)\d\d|(?:next|this|last) (?:week|month|"
                      r"quarter|year)|(?:end|start|beginning|middle) of (?:the )?(?:year|quarter|month)|spring|summer|"
                      r"autumn|fall|winter|mid-\w+)\b", re.I)
_MONTH_WORDS = frozenset("january february march april may june july august september october november december jan feb "
                         "mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday saturday "
                         "sunday q1 q2 q3 q4".split())
_PLACE_RE = re.compile(r"\b(?:in|from|to|near|outside|across)\s+(?:the\s+)?(?P<place>(?-i:[A-Z][\w'’-]+)"
                       r"(?:\s+(?-i:[A-Z][\w'’-]+)){0,2})", re.I)


def _read_value_kinds(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """(the kinds of value a statement states besides people — "=when", "=count", "=money", "=place" — and the people
    it names)."""
    kinds = set()
    if _DATE_RE.search(text):
        kinds.add("=when")
    amounts = find_amounts(text)
    if number_tokens(text):
        kinds.add("=count")
    if any(a.currency or a.magnitude for a in amounts):
        kinds.add("=money")
    if any(m.group("place").split()[0].lower() not in _MONTH_WORDS for m in _PLACE_RE.finditer(text)):
        kinds.add("=place")
    return frozenset(kinds), people_in(text)


value_kinds = _Primable(_read_value_kinds)


def people_in(text: str) -> frozenset[str]:
    """Person-like names a statement mentions (runs of two or three capitalised words, see :func:`_people`)."""
    return _people(text)


def _unanchored(text: str) -> str:
    """``text`` without the extractor's "At <company>," setting: the record's own company is no value of a slot."""
    return _ANCHOR_RE.sub("", text)


def _count_word(raw: str) -> str:
    """"12" / "1,200" / "twelve" / "one" in canonical form."""
    word = raw.lower().replace(",", "")
    value = 1 if word == "one" else NUMBER_WORDS.get(word)
    return canonical_number(float(value if value is not None else word))


def _deciders(text: str) -> frozenset[str]:
    """Who decides: person-like names and deciding bodies ("the board", "the investment committee")."""
    bodies = {" ".join(m.group(0).lower().split()[1:]) for m in _BODY_RE.finditer(text)}
    return _people(text) | frozenset(bodies)


def _stages(text: str, broad: bool) -> frozenset[str]:
    """Deal stages of ``text``; ``broad`` adds the stages of :data:`_EXTRA_STAGES` found in a stage position."""
    found = {m.name for m in find_deal_stages(text)}
    if broad:
        low = lower_or_none(text)
        found |= {name for name, rx in _EXTRA_STAGES.items() if not cannot_match(rx, low) for m in rx.finditer(text)
                  if _STAGE_POSITION_RE.search(text[max(0, m.start() - 30):m.start()])}
    return frozenset(found)


def _stage_position(text: str) -> bool:
    """A deal stage in a stage position: "we're in negotiation now", "moved to proposal"."""
    return any(_STAGE_POSITION_RE.search(text[max(0, m.start - 30):m.start]) for m in find_deal_stages(text))


def _whens_broad(text: str) -> frozenset[str]:
    return _whens(text) | frozenset(" ".join(m.group(0).lower().replace("-", " ").split())
                                    for m in _SEASON_RE.finditer(text))


def _products(text: str) -> frozenset[str]:
    """Product/vendor names: known technologies, solution words and single capitalised words that are neither
    sentence-initial nor part of a person-like name."""
    out = {m.name.lower() for m in find_technologies(text)}
    out |= {w for w, rx in _SOLUTION_RES if rx.search(text)}
    for m in _CAP_RUN_RE.finditer(text):
        words = m.group(0).split()
        if len(words) == 1 and not _at_sentence_start(text, m.start()):
            w = _POSSESSIVE_END_RE.sub("", words[0]).lower()
            if w not in _NAME_NOISE and w not in _ROLE_ACRONYMS and w not in STOPWORDS:
                out.add(w)
    return frozenset(out)


_MONTH_CANON = {m[:3]: m for m in _MONTHS[:12]} | {"sept": "september"}


def _canon_when(raw: str) -> str:
    """"1 Oct" -> "1 october", "Jun. 30" -> "june 30": month names in one spelling."""
    words = raw.lower().replace(",", "").replace(".", " ").split()
    return " ".join(_MONTH_CANON.get(w if w == "sept" else w[:3], w) if w.isalpha() else w for w in words)


def _whens(text: str) -> frozenset[str]:
    return frozenset(_canon_when(m.group(0)) for m in _WHEN_RE.finditer(text))


_QUARTER_RE = re.compile(r"q[1-4]")


def _when_compatible(a: str, b: str) -> bool:
    """"june" / "june 30", "july" / "q3", "q3 2026" / "q3": one refines the other, no contradiction."""
    wa, wb = set(a.split()), set(b.split())
    if _YEARISH.match(a) or _YEARISH.match(b):
        return a == b  # a bare year is a leftover of a fuller date more often than a claim of its own
    if wa <= wb or wb <= wa:
        return True
    quarters = {w for w in wa | wb if _QUARTER_RE.fullmatch(w)}
    months = [w for w in (wa | wb) if w in _MONTHS[:12]]
    return bool(quarters and months) and all(f"q{_MONTHS.index(m) // 3 + 1}" in quarters for m in months)


def _levels(text: str, table: dict[str, re.Pattern[str]]) -> frozenset[str]:
    low = lower_or_none(text)
    return frozenset(k for k, rx in table.items() if gated_search(rx, text, low))


def _titles(text: str) -> frozenset[str]:
    out = set()
    for m in _TITLE_RE.finditer(text):
        roles = find_roles(m.group(0))
        t = roles[0].name if roles else " ".join(m.group(0).lower().replace("vice president", "vp").replace(
            " of ", " ").replace(",", "").split())
        out.add(t)
    return frozenset(out)


def _pain(text: str) -> frozenset[str]:
    m = _PAIN_RE.search(text)
    tail = text[m.end():] if m else text
    return frozenset(w for w in (tokens(tail)) if w not in STOPWORDS and len(w) > 2 and w not in ("now", "still"))


def _pain_broad(text: str) -> frozenset[str]:
    m = _PAIN_RE.search(text) or _PAIN_EXTRA_RE.search(text)
    tail = text[m.end():] if m else text
    return frozenset(w for w in (tokens(tail)) if w not in STOPWORDS and len(w) > 2 and w not in ("now", "still"))


@lru_cache(maxsize=8192)
def topic_values(text: str, broad: bool = False) -> tuple[tuple[str, TopicValues], ...]:
    """Every topic slot ``text`` speaks to, with its current and former values (cached). ``broad`` also reads the
    broad cues (what a statement answers, for ranking; supersession uses the strict ones)."""
    low = lower_or_none(text)

    def cue(rx: re.Pattern[str]) -> re.Match[str] | None:
        return gated_search(rx, text, low)

    if cue(_ASKED_RE) or _TODO_RE.match(text):
        return ()  # a question, a hypothetical or a to-do line states no current value
    cur, former = _split_former(text, broad)
    lowered = f" {' '.join(tokens(text))} "
    found: dict[str, TopicValues] = {}

    def add(key: str, fn: Any) -> None:
        found[key] = TopicValues(fn(cur), fn(former) if former else frozenset())

    techs = find_technologies(text)
    slots = [m.group for m in techs if m.group in SUPERSEDING_TECH_SLOTS]
    slots += [s for s, words in TECH_SLOT_WORDS.items() if _has(lowered, words)]
    for slot in dict.fromkeys(slots):
        add(f"technology:{slot}", lambda t, slot=slot: frozenset(m.name.lower() for m in find_technologies(t)
                                                                 if m.group == slot))
    funding = bool(cue(_FUNDING_RE) or (broad and cue(_FUNDING_EXTRA_RE)))
    if funding:
        add("funding", lambda t: _money(t) | frozenset(f"series {a or b}".lower() for a, b in _SERIES_RE.findall(t))
            | (_levels(t, _FUNDING_STATUS_RE) if broad else frozenset()))
    if (not funding or broad) and any(a.is_money or a.magnitude for a in find_amounts(text)):
        money_slot = next((sl for p, sl in _MONEY_PHRASES[broad] if p in lowered), None)
        if money_slot is None and " deal " in lowered:
            money_slot = "deal_value"
        if money_slot and (not funding or money_slot == "budget"):  # a round's amount is no budget, unless named one
            add(f"amount:{money_slot}", _money)
    if not cue(_PLAN_RE):
        if cue(_TEAM_RE):
            add("team_size", lambda t: frozenset(canonical_number(float(x.replace(",", "")))
                                                 for m in _TEAM_RE.finditer(t) for x in m.groups() if x))
        elif broad and cue(_TEAM_EXTRA_RE):
            add("team_size", lambda t: frozenset(_count_word(x) for m in _TEAM_EXTRA_RE.finditer(t)
                                                 for x in m.groups() if x))
        elif cue(_HEADCOUNT_RE):
            add("headcount", _counts)
    stages = _stages(text, broad)
    if stages & _SELF_EVIDENT_STAGES or (stages and _has(lowered, DEAL_STAGE_CUES)) or (
            broad and stages and (_stage_position(text) or stages - {m.name for m in find_deal_stages(text)})):
        add("deal_stage", lambda t: _stages(t, broad))
    if cue(_DM_RE):
        add("decision_maker", _deciders if broad else _people)
    elif broad and cue(_DM_EXTRA_RE):
        add("decision_maker", _deciders)
    if (cue(_TIMELINE_RE) or (broad and cue(_TIMELINE_EXTRA_RE))) and (
            _WHEN_RE.search(text) or (broad and cue(_SEASON_RE))):
        add("timeline", _whens_broad if broad else _whens)
    if cue(_COMPETITOR_RE) or (broad and cue(_COMPETITOR_EXTRA_RE)):
        add("competitor", _products)
    urgency = _URGENCY_BROAD_RE if broad else _URGENCY_RE
    if cue(_URGENCY_CUE) or (broad and any(cue(rx) for rx in _URGENCY_EXTRA_RE.values())):
        add("urgency", lambda t: _levels(t, urgency))
    if (cue(_CURRENT_RE) or (broad and cue(_CURRENT_EXTRA_RE))) and not any(
            k.startswith("technology:") for k in found):
        add("current_solution", _products)
    if cue(_PAIN_RE) or (broad and cue(_PAIN_EXTRA_RE)):
        add("pain_point", _pain_broad if broad else _pain)
    if cue(_OFFICE_RE) and not _has(lowered, ("headquartered", "headquarters", "hq", "head office")):
        add("location:office", lambda t: frozenset((m.group("a") or m.group("b")).lower()
                                                   for m in _OFFICE_NAME_RE.finditer(t)))
    elif _has(lowered, HQ_CUES):
        add("location:hq", lambda t: frozenset(n for n in _names(_unanchored(t) if broad else t) if n not in _HQ_WORDS))
    elif broad and cue(_ORG_IN_PLACE_RE):
        add("location:hq", lambda t: frozenset(m.group("place").lower() for m in _ORG_IN_PLACE_RE.finditer(t)))
    for r in find_roles(text):
        if _role_holders(text, r.name):  # "CTO Valentina", "Peter Lang, the CEO" — never a bare "The CEO"
            add(f"leadership:{r.name}", lambda t, role=r.name: _role_holders(t, role))
    role = cue(_ROLE_PRED_RE)
    if role:
        add(f"role:{role.group('who').lower()}", _titles)
    elif broad and (named := gated_search(_NAMED_TITLE_RE, unanchored := _unanchored(text), lower_or_none(unanchored))):
        add(f"role:{named.group('who').lower()}",
            lambda t: frozenset(" ".join(m.group("title").lower().split()) for m in _NAMED_TITLE_RE.finditer(t)))
    if cue(_RENEWAL_RE):
        if _WHEN_RE.search(text):
            add("renewal:date", _whens)
        if any(cue(rx) for rx in _RENEWAL_STATUS_RE.values()):
            add("renewal:status", lambda t: _levels(t, _RENEWAL_STATUS_RE))
    if cue(_BILLING_RE) and any(cue(rx) for rx in _FREQUENCY_RE.values()):
        add("billing_frequency", lambda t: _levels(t, _FREQUENCY_RE))
    if cue(_PREFER_RE) and any(cue(rx) for rx in _CHANNEL_RE.values()):
        add("contact_preference", lambda t: _levels(t, _CHANNEL_RE))
    if _has(lowered, PLAN_CUES) and _has(lowered, PRICING_PLANS):
        add("pricing_plan", lambda t: frozenset(p for p in PRICING_PLANS if f" {p} " in f" {' '.join(tokens(t))} "))
    specific = text if cannot_match(_GENERIC_VENDOR_RE, low) else _GENERIC_VENDOR_RE.sub(" ", text)
    if (_has(lowered if specific == text else f" {' '.join(tokens(specific))} ", VENDOR_CUES) and "vendor" not in found
            and (_names(_unanchored(text)) if broad else proper_nouns(text))):
        add("vendor", lambda t: _names(_unanchored(t) if broad else t))
    return tuple(found.items())


def topics_of(text: str) -> dict[str, TopicValues]:
    """The topic slots of ``text`` (see :func:`topic_values`)."""
    return dict(topic_values(text))


def answer_topics(text: str) -> dict[str, TopicValues]:
    """The topic slots ``text`` answers, read with the broad cues (see :func:`topic_values`): for ranking, never
    for hiding."""
    return dict(topic_values(text, True))


# The pairwise tests (newer_value_on, retires_value_on: every pair of a record's memories on an asked topic) read the
# same statements' slots over and over: each statement's slots as a dict, its comparable slots and their families
# are memoised per text (and primable from a memory's stored readings). Shared, never mutated.
statement_answers = _Primable(answer_topics)


@lru_cache(maxsize=16384)
def _comparable_answers(text: str) -> tuple[dict[str, TopicValues], frozenset[str]]:
    """(:func:`_comparable` slots of :func:`statement_answers`, their families)."""
    slots = _comparable(statement_answers(text))
    return slots, frozenset(topic_family(k) for k in slots)


def topic_of(text: str) -> str | None:
    """The main superseding topic of a statement (the first slot it speaks to), or None.

    Keys: 'technology:<database|cloud|crm|framework|data_warehouse|language>', 'funding', 'amount:<deal_value|budget|
    price|revenue|valuation>', 'team_size', 'headcount', 'deal_stage', 'decision_maker', 'timeline', 'competitor',
    'urgency', 'current_solution', 'pain_point', 'location:<hq|office>', 'role:<person>', 'leadership:<role>',
    'renewal:<date|status>', 'billing_frequency', 'contact_preference', 'pricing_plan', 'vendor'.
    """
    values = topic_values(text)
    return values[0][0] if values else None


def shares_topic(a: str, b: str) -> bool:
    """True if both statements speak to at least one common topic slot."""
    return bool(set(topics_of(a)) & set(topics_of(b)))


def contradicts(old: str, new: str, cosine: float, min_cosine: float = RELATED_COSINE) -> bool:
    """True if ``new`` replaces ``old``: on a common topic slot, ``new`` retires ``old``'s value in passing
    ("migrated from Oracle to PostgreSQL") or both state different values (each names one the other does not);
    never for a restatement, an additive statement ("also uses ...") or an unrelated pair."""
    return bool(replaced_topics(old, new, cosine, min_cosine))


def replaced_topics(old: str, new: str, cosine: float, min_cosine: float = RELATED_COSINE) -> list[str]:
    """The topic slots on which ``new`` replaces ``old`` (see :func:`contradicts`)."""
    shared = set(topics_of(old)) & set(topics_of(new))
    if not shared or cosine < min_cosine or is_near_duplicate(old, new, cosine):
        return []
    ot, nt = topics_of(old), topics_of(new)
    additive = bool(_ADDITIVE_RE.search(new) or _ADDITIVE_RE.search(old))  # a multi-valued slot
    new_current = _split_former(new)[0]
    out = []
    for key in sorted(shared):
        ov, nv = ot[key], nt[key]
        if not ov.current:
            continue
        same = _same_value_fn(key)
        if _any_matched(ov.current, nv.former, same) and not _all_matched(ov.current, nv.current, same):
            out.append(key)  # the newer statement names the old value as a former one
            continue
        if any(still_named(o, key, new_current) for o in ov.current if not any(same(o, c) for c in nv.current)):
            continue  # an old value the newer statement still names, though not read as one of its values
        if additive or not nv.current:
            continue
        if key == "pain_point":
            if len(ov.current & nv.current) / len(ov.current | nv.current) < 0.2:
                out.append(key)
            continue
        if not _all_matched(nv.current, ov.current, same) and not _all_matched(ov.current, nv.current, same):
            out.append(key)
    return out


def still_named(value: str, key: str, text: str) -> bool:
    """True if ``text`` (a newer statement, its former values blanked) still names ``value`` of slot ``key``: a
    person by one of their name words ("The CFO Ines Moreau now signs off together with Omar" still names Omar
    Haddad as a decision maker), a product, place or body by its words. Such a value is not replaced, whatever else the
    newer statement adds. Numbers, dates and levels (team size, timeline, urgency, ...) are compared as values only:
    a number recurs by coincidence."""
    if key == "decision_maker" or key.startswith("leadership:"):
        names = {m.group(0).lower() for m in _CAP_WORD_RE.finditer(text)}
        names = {_OWNER_END_RE.sub("", n) for n in names}
        words = [w.strip(".") for w in value.split() if len(w.strip(".")) >= 3]
        return any(w in names for w in words)
    if _named_answer(key) or key == "current_solution":
        return bool(_value_re(value).search(text))
    return False


_CAP_WORD_RE = re.compile(r"(?<![\w'’])(?-i:[A-Z])[\w'’-]+")


@lru_cache(maxsize=4096)
def _value_re(value: str) -> re.Pattern[str]:
    """``value`` as a whole word or phrase, in any case (compiled once per value)."""
    return re.compile(rf"(?<![\w-]){re.escape(value)}(?![\w-])", re.IGNORECASE)


def newer_value_on(old: str, new: str, families: frozenset[str]) -> bool:
    """True if ``new``, on a topic slot of ``families`` that ``old`` also speaks to, names ``old``'s value as a former
    one or states a value ``old`` does not hold ("Stage: demo scheduled." / "After the demo we lost it: marked closed
    lost."): when ``new`` is the newer statement it answers a question on that topic first. A ranking signal read
    with the broad cues (:func:`answer_topics`), looser than :func:`replaced_topics` (no cosine floor, additive
    statements count): nothing is hidden by it."""
    (ot, ofam), (nt, nfam) = _comparable_answers(old), _comparable_answers(new)
    if ofam.isdisjoint(families) or nfam.isdisjoint(families):
        return False  # no slot of an asked family on either side
    for key in ot.keys() & nt.keys():
        if topic_family(key) not in families:
            continue
        ov, nv = ot[key], nt[key]
        same = _same_value_fn(key)
        if _any_matched(ov.current, nv.former, same):
            return True
        if nv.current and not _all_matched(nv.current, ov.current, same):
            return True
        if ov.current and not nv.current and not nv.former and (_named_answer(key) or key == "current_solution") \
                and is_negated(new):
            return True  # "the CRM subscription lapsed and they track nothing now": the slot is empty now
    return False


# Slots that answer one question with values of one kind: the CRM a team now tracks customers in is its current
# solution ("the team keeps account notes in spreadsheets" / "HubSpot has been live since March").
_COMPARABLE = {"technology:crm": "current_solution"}


def _comparable(topics: dict[str, TopicValues]) -> dict[str, TopicValues]:
    """``topics`` with the keys of :data:`_COMPARABLE` read as the slot they answer (values merged)."""
    if not any(k in _COMPARABLE for k in topics):
        return topics
    out: dict[str, TopicValues] = {}
    for key, tv in topics.items():
        k = _COMPARABLE.get(key, key)
        had = out.get(k)
        out[k] = tv if had is None else TopicValues(had.current | tv.current, had.former | tv.former)
    return out


def retires_value_on(old: str, new: str, families: frozenset[str]) -> bool:
    """True if ``new`` names every current value of ``old`` on a topic slot of ``families`` as a former one, not as a
    current one, and states the value that replaced it ("... stayed behind in Madrid." / "Sunbird moved its
    headquarters from Madrid to Lisbon."): ``old`` speaks of a retired value even when both come from one
    document."""
    ot, nt = statement_answers(old), statement_answers(new)
    if not ot or not nt:
        return False
    for key in ot.keys() & nt.keys():
        if topic_family(key) not in families or not ot[key].current or not nt[key].current:
            continue  # "moved from Porto to Lyon" retires Porto; "reads from Snowflake" names no replacement
        same = _same_value_fn(key)
        if _all_matched(ot[key].current, nt[key].former, same) and not _any_matched(
                ot[key].current, nt[key].current, same):
            return True
    return False


def _named_answer(key: str) -> bool:
    """Slots answered only by a name: "the product database" or "at their office" names no database or office."""
    return key.startswith(("technology:", "location:")) or key in ("competitor", "vendor")


def answers_on(text: str, families: frozenset[str]) -> bool:
    """True if ``text`` answers a question on ``families``: it speaks to such a slot and, when it names values
    there, names a current one ("X moved off Oracle last year" names only a former value: no answer). A slot
    answered by a name (:func:`_named_answer`) needs one, except for a question on the current solution ("the CRM
    subscription lapsed and they track nothing now" answers "What do they use today?")."""
    keys = [tv for key, tv in statement_answers(text).items() if topic_family(key) in families
            and (tv.current or tv.former or not _named_answer(key) or "current_solution" in families)]
    return bool(keys) and (any(tv.current for tv in keys) or not any(tv.former for tv in keys))


def answers_role_of(text: str, names: frozenset[str]) -> bool:
    """True if ``text`` states the role of someone ``names`` (lower-case name words) names: a role key of that person
    ("Ewa Lis is the Commercial Director") or a leadership slot they hold ("CEO Jan Nowicki" answers "What is Jan's
    role?", not "What is Ewa's role?")."""
    for key, tv in statement_answers(text).items():
        if key.startswith("role:") and key[len("role:"):] in names:
            return True
        if key.startswith("leadership:") and any(set(v.split()) & names for v in tv.current):
            return True
    return False


def _same_value_fn(key: str) -> Any:
    if key == "decision_maker" or key.startswith("leadership:"):
        return _same_person
    if key in ("timeline", "renewal:date"):
        return _when_compatible
    return _equal


def _equal(a: str, b: str) -> bool:
    return a == b


def _all_matched(values: frozenset[str], others: frozenset[str], same: Any) -> bool:
    if same is _equal:
        return values <= others
    return all(any(same(v, o) for o in others) for v in values)


def _any_matched(values: frozenset[str], others: frozenset[str], same: Any) -> bool:
    """True if some value of ``values`` is the same as some of ``others``."""
    if same is _equal:
        return not values.isdisjoint(others)
    return any(same(v, o) for v in values for o in others)


MAX_SLOT_WORDS = 4
# Words a statement about one slot uses besides its values: what the slot's own cue words cover.
_CLAIM_NOISE = frozenset("""now still currently today new old previous previously original originally earlier later
    first last recently since already just also only all everything every company team""".split())


def supersedes(old: str, new: str, cosine: float, min_cosine: float = RELATED_COSINE,
               subject: frozenset[str] = frozenset()) -> list[str]:
    """The topic slots on which ``new`` replaces ``old`` *and* hides it: only when every claim of ``old`` lies in
    those slots. A memory that also states something else — another topic, a name, a number the newer one does
    not restate ("Tobias Brandt (CFO) ... DPO Hanna = veto") — stays visible, since hiding it would hide a true
    fact; [] when ``old`` must stay visible (check :func:`replaced_topics` for a partial replacement).
    ``subject``: lower-case words naming the record the memories are about (its name, its company) — who the
    statement is about, not a claim of its own."""
    keys = replaced_topics(old, new, cosine, min_cosine)
    if not keys or other_claims(old, new, keys, subject):
        return []
    return keys


def other_claims(old: str, new: str, keys: list[str], subject: frozenset[str] = frozenset()) -> list[str]:
    """What ``old`` states beyond its values in ``keys`` that ``new`` does not restate."""
    ot, nt = topics_of(old), topics_of(new)
    extra: list[str] = []
    families = {topic_family(k) for k in keys}
    for key, ov in ot.items():
        if key in keys or not ov.current or topic_family(key) in families:
            continue  # "role:sarah" and "leadership:vp_marketing" are one claim
        nv = nt.get(key)
        if nv is None or not _all_matched(ov.current, nv.current | nv.former, _same_value_fn(key)):
            extra.append(f"topic {key}")
    covered = {w for key in keys for v in ot[key].current | ot[key].former for w in tokens(v)} | set(subject)
    covered |= {w for key in keys for v in nt[key].current | nt[key].former for w in tokens(v)}
    new_names = proper_nouns(new)
    for name in proper_nouns(old) - new_names:
        if name in _NAME_NOISE or name in _ROLE_ACRONYMS or name in _MONTHS or set(tokens(name)) <= covered:
            continue
        if find_technologies(name) and any(k.startswith("technology:") for k in keys):
            continue
        extra.append(f"name {name}")
    for n in numbers_in(old) - numbers_in(new):
        if _YEARISH.match(n):
            continue  # a year dates the claim ("a budget of $40,000 for 2026"), it is not another claim
        if n not in covered and not any(n in v for key in keys for v in ot[key].current | ot[key].former):
            extra.append(f"number {n}")
    # Content words beyond the slot's values, the newer statement's words and the slot's own wording: a few are
    # how the slot is phrased ("runs its core platform on"), more are another claim.
    cue = {w for key in keys for w in content_stems(TOPIC_LABELS.get(key, key.replace(":", " ").replace("_", " ")))}
    rest = set(content_stems(old)) - set(content_stems(new)) - set(content_stems(" ".join(covered))) - cue
    rest -= {w for w in rest if w in _CLAIM_NOISE}
    if len(rest) > MAX_SLOT_WORDS:
        extra.append("words " + " ".join(sorted(rest)))
    return extra


def _has(lowered: str, phrases: tuple[str, ...] | list[str]) -> str | None:
    key = phrases if isinstance(phrases, tuple) else tuple(phrases)
    padded = _PADDED.get(key)
    if padded is None:
        padded = _PADDED[key] = tuple(f" {p} " for p in key)
    if not any(map(lowered.__contains__, padded)):
        return None
    return next(p for p, pp in zip(key, padded, strict=True) if pp in lowered)


_PADDED: dict[tuple[str, ...], tuple[str, ...]] = {}  # phrases -> " phrase " (the lexicon's tuples: a few dozen)


_HOLDER_NAME = r"[A-Z][\w'’-]*\.?(?:\s+(?:(?:van|von|de|der|da|del|di|la|le|al|bin|ben)\s+)*[A-Z][\w'’-]*\.?){0,2}"
_HOLDER_AFTER_RE = re.compile(r"^\s*(?:[,:(=]\s*|is\s+|was\s+)?(?P<name>" + _HOLDER_NAME + r")(?![\w'’])")
_HOLDER_BEFORE_RE = re.compile(
    r"(?<![\w'’.-])(?P<name>" + _HOLDER_NAME + r")\s*(?:,\s*(?:(?:the|our|their|its|his|her)\s+|[A-Z][\w&.-]*(?:\s+[A-Z][\w&.-]*)*['’]s?\s+)?"
    r"|\(\s*|\s+(?:\w+\s+){0,2}?(?:is|was|as|became|becomes|named|appointed)\s+(?:(?:the|now|our|their|new|an?)\s+)*"
    r"|\s+)(?:new\s+)?$")


def _holder_ok(name: str) -> str | None:
    if _OWNER_END_RE.search(name):
        return None  # "LedgerLoop's head of sales": the owner, not the holder
    words = [w.strip(".").lower() for w in name.split()]
    words = [w for w in words if w and w not in _NAME_NOISE and w not in _ROLE_ACRONYMS and w not in STOPWORDS]
    if not words or find_technologies(name) or words[0] in _COMMON_CAPITALISED or words[0] in _AREA_WORDS:
        return None
    return " ".join(words)


_AREA_WORDS = frozenset(w for area in _TITLE_AREAS for w in area.split())


def _role_holders(text: str, role: str) -> frozenset[str]:
    """Names attached to ``role`` in ``text``: "CTO Valentina", "CFO, Rachel Kim", "Peter Lang, the CEO",
    "Tobias Brandt is CFO", "Oliver Grant (CRO)". A role with no attached name ("The CEO stepped back",
    "her CEO") names nobody: a generic subject does not identify a person slot."""
    text = _ANCHOR_RE.sub(lambda m: " " * len(m.group(0)), text)
    out = set()
    for r in find_roles(text):
        if r.name != role:
            continue
        after = _HOLDER_AFTER_RE.match(text[r.end:])
        before = _HOLDER_BEFORE_RE.search(text[:r.start])
        for m in (after, before):
            if m is None:
                continue
            ok = _holder_ok(m.group("name"))
            if ok:
                out.add(ok)
    return frozenset(out)


def _same_person(a: str, b: str) -> bool:
    """"rebecca l." / "rebecca lindqvist", "diego" / "diego ferreyra": one shared name word (>= 3 letters)."""
    wa = {w.strip(".") for w in a.split() if len(w.strip(".")) >= 3}
    wb = {w.strip(".") for w in b.split() if len(w.strip(".")) >= 3}
    return bool(wa & wb) or a == b


def _person_names(text: str) -> set[str]:
    return {n for n in proper_nouns(text) if n not in _ROLE_ACRONYMS and not find_technologies(n)}


TOPIC_LABELS = {
    "technology:database": "database", "technology:cloud": "cloud provider", "technology:crm": "CRM",
    "technology:framework": "framework", "technology:data_warehouse": "data warehouse",
    "technology:language": "programming language", "funding": "funding raised", "amount:budget": "budget",
    "amount:deal_value": "deal value", "amount:price": "price", "amount:revenue": "revenue",
    "amount:valuation": "valuation", "team_size": "team size", "headcount": "headcount employees",
    "deal_stage": "deal stage", "decision_maker": "decision maker", "timeline": "timeline",
    "competitor": "competitor", "urgency": "urgency priority", "current_solution": "current solution",
    "pain_point": "pain point challenge", "location:office": "office", "location:hq": "headquarters location",
    "renewal:date": "renewal date", "renewal:status": "renewal status", "billing_frequency": "billing",
    "contact_preference": "contact preference", "pricing_plan": "pricing plan", "vendor": "vendor",
}


@lru_cache(maxsize=8192)
def topic_label(text: str) -> str | None:
    """Words naming the CRM topics a statement speaks to ("decision maker", "role title"), or None: what a
    topic question asks about even when the statement's own words differ ("Who is the decision maker?" /
    "Final sign-off moved to Priya Nair")."""
    labels = []
    for key in statement_answers(text):
        label = TOPIC_LABELS.get(key) or ("role title" if key.startswith("role:") else
                                          "leadership role" if key.startswith("leadership:") else None)
        if label and label not in labels:
            labels.append(label)
    return ", ".join(labels) or None


# --- the topic a question asks about ---------------------------------------------------------------------------
# Phrases a question uses for each topic family (a phrase matches when all its stemmed words occur in the
# question). Families group the keys whose values answer the same question: a person's role and the leadership
# slot both answer "What is X's role?".
QUESTION_CUES: dict[str, tuple[str, ...]] = {
    "technology:database": ("database", "db"), "technology:cloud": ("cloud", "hosted", "hosting", "host on"),
    "technology:crm": ("crm",), "technology:framework": ("framework",),
    "technology:data_warehouse": ("data warehouse", "warehouse"), "technology:language": ("programming language",),
    "funding": ("funding", "funded", "raised", "raise", "series", "round", "backed", "owned", "ownership"),
    "amount:budget": ("budget", "spend", "afford"),
    "amount:deal_value": ("deal size", "deal worth"), "amount:price": ("price", "pricing"),
    "amount:revenue": ("revenue", "arr"), "amount:valuation": ("valuation",),
    "team_size": ("team size", "team big", "team large", "people team"),
    "headcount": ("headcount", "employees", "employ", "staff", "people work", "company size", "company big",
                  "company large", "workforce"),
    "deal_stage": ("deal stage", "stage", "deal stand", "deal status", "opportunity status", "pipeline"),
    "decision_maker": ("decision maker", "decision", "decide", "sign off", "sign-off", "approve", "approves",
                       "buying decision", "signs"),
    "timeline": ("timeline", "go-live", "go live", "launch date", "roll out", "rollout", "deadline", "start date",
                 "timing", "kick off", "kickoff"),
    "competitor": ("competitor", "competing", "competition", "vendors considering", "comparing", "compare",
                   "evaluating", "considering", "alternatives", "shortlist", "suppliers", "speaking to", "talking to",
                   "other vendors"),
    "urgency": ("urgency", "urgent", "priority", "pressing", "time-sensitive", "how soon"),
    "current_solution": ("current solution", "today use", "use track", "use manage"),
    "pain_point": ("pain point", "pain", "challenge", "problem", "struggle", "struggling", "frustration",
                   "bottleneck", "headache", "solve"),
    "location:office": ("office",),
    "location:hq": ("headquarters", "headquartered", "hq", "based", "located", "location"), "renewal:date": ("renewal", "renew"),
    "renewal:status": ("renewal", "renew"), "billing_frequency": ("billed", "billing"),
    "contact_preference": ("contacted", "contact", "reach"), "pricing_plan": ("pricing plan", "tier", "subscription"),
    "vendor": ("vendor",),
    "role": ("role", "title", "job", "position"),
}
_QUESTION_CUE_STEMS = {family: [frozenset(content_stems(p)) for p in phrases]
                       for family, phrases in QUESTION_CUES.items()}


def topic_family(key: str) -> str:
    """The question a topic key answers: 'role:<person>' and 'leadership:<role>' both answer "what is X's role";
    every other key is its own family."""
    return "role" if key.startswith(("role:", "leadership:")) else key


# Question shapes a bag of stems misses: "When do they want to start?" asks for a timeline, "Which plan are they
# on?" for a pricing plan (but "planning to roll out" does not), "Where does the deal stand?" for a deal stage.
_QUESTION_RES = {
    "timeline": re.compile(r"^\s*(?:and\s+)?(?:when|by when|how soon|what date)\b|\bwhat(?:'s| is) the (?:target |"
                           r"start |go-live |launch )?date\b", re.I),
    "pricing_plan": re.compile(r"\b(?:which|what) (?:pricing )?plan\b(?! to)", re.I),
    "deal_stage": re.compile(r"\bwhere (?:does|do|is|are) (?:the |this |that |our )?(?:\w+ ){0,4}(?:deal|opportunity)\b",
                             re.I),
    # "Where is Kestrel District Council?": nothing but a name after "where is" (names are blanked here)
    "location:hq": re.compile(r"^\s*where (?:is|are)\s*(?:(?-i:[A-Z])[\w&'’.-]*\s*|&\s*)*\??\s*$", re.I),
}
# "the budget round", "a planning round": a cycle of the organisation, not a funding round
_NOT_FUNDING_ROUND_RE = re.compile(r"\b(budget(?:ing)?|planning|review|interview|approval)\s+rounds?\b", re.I)
# What a question on one family is also answered by: "What do they use today to track customers?" by a statement
# naming their CRM, "Which database do they run on?" by one naming their data warehouse.
FAMILY_ANSWERS = {"current_solution": ("technology:crm",), "technology:database": ("technology:data_warehouse",)}
# Capitalised words after a question's first word are names ("Oakhurst Family Office", "Sablewood Capital"), not
# words of the question: they name no topic.
_NAME_WORD_RE = re.compile(r"(?<=\S)(\s+)(?-i:[A-Z][a-z][\w'’-]*)")


@lru_cache(maxsize=4096)
def question_topics(query: str) -> frozenset[str]:
    """The topic families (see :func:`topic_family`) a question asks about: the slots the question itself speaks
    to plus those it names ("Where is Kestrel hosted?" -> technology:cloud, "What is Marcus's role?" -> role),
    and the families that answer those (:data:`FAMILY_ANSWERS`). Capitalised words inside the question are names
    and name no topic ("Oakhurst Family Office" asks nothing about an office)."""
    plain = _NOT_FUNDING_ROUND_RE.sub(r"\1 cycle", _NAME_WORD_RE.sub(r"\1", query))
    stems = set(content_stems(plain))
    found = {topic_family(k) for k in topics_of(query)}
    found |= {family for family, cues in _QUESTION_CUE_STEMS.items() if any(c and c <= stems for c in cues)}
    found |= {family for family, rx in _QUESTION_RES.items() if rx.search(plain)}
    found |= {answer for family in list(found) for answer in FAMILY_ANSWERS.get(family, ())}
    return frozenset(found)


@lru_cache(maxsize=8192)
def statement_topics(text: str) -> frozenset[str]:
    """The topic families a statement answers, read with the broad cues (cached)."""
    return frozenset(topic_family(k) for k in statement_answers(text))
