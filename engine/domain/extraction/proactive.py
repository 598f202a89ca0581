"""Proactive offline extraction: CRM material (call transcripts, email threads, terse CRM notes, research
briefs) becomes short, self-contained facts about one entity, each with its source span — no LLM.

What is kept and how it is rewritten:

* **Structure** — speaker labels (``**Sarah:** ...`` / ``Sarah: ...`` / ``[00:12] Sarah: ...``) and email
  ``From:`` headers / sign-offs tell who speaks; quoted replies (``> ...``, ``On ... wrote:``,
  ``-----Original Message-----``), headers and signatures are dropped.
* **Dropped sentences** — greetings, pleasantries and filler ("Sure, go ahead.", "Aligns perfect."),
  questions, logistics/scheduling ("I'll send the invite for Tuesday"), to-do and next-step lines ("Next: share
  the API docs"), document title lines ("Greywater Utilities, meeting notes", "Acme — Sarah Chen"), instructions
  ("Also extract First Name, Last Name, …") and, from speakers other than the entity, sentences that carry no fact.
* **Self-contained** — "I"/"my"/"we"/"our" become the speaker's name (the entity's name when the entity
  speaks), "you" in another speaker's words becomes the entity, a verb-first CRM note gets the entity as its
  subject ("Uses Oracle" -> "Maya Chen uses Oracle"), "Budget: $120k" becomes "Maya Chen's budget is $120k",
  CRM abbreviations are spelled out and relative dates are anchored. An email address is never used as a
  subject: without a name the subject is neutral ("The contact").
* **Merged** — the same fact stated twice in one input is kept once (across inputs the memory store merges
  restatements and bumps the seen count).
* **Recorder formats** — besides ``Name:`` turns: ``Speaker 2 (Name):``, ``Rep — Name:``, a name line with a
  timestamp (``Name  0:42``) whose words follow, and stage directions (``[laughs]``) removed; a document's title
  line ("Discovery call — Acme — transcript", "[Zoom transcript]") is not a fact.
* **Emails** — bilingual headers (``Od / From:``), sign-offs in several languages or any short closing line before a
  name ("Warmest,\nDana"), a signature opening with the sender's name, contact lines (phone / address / email) and a
  ``Name <email> wrote on ...:`` line naming the sender of unquoted text.
* **One claim per memory** — sentences split at semicolons between clauses, and a subject with several verb phrases
  ("Acme uses Oracle, has 400 staff and plans to move to AWS by Q3") becomes one memory per phrase, each with the
  subject; fragments without a claim of their own ("That's Bram.", "End of June.") are dropped in conversation.
* **CRM labels** — shorthand labels (``Now:``, ``Alt:``, ``Econ:``, ``Systems:``, ``Why now:`` ...) map to the
  standard fields; firmographic labels (headcount, funding, stack, current solution ...) name the contact's company;
  ``Name: Head of X`` reads as a title and a brief's subject-less company description gets the company as subject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from memrelay.engine.domain.extraction.catalog import find_deal_stages, find_roles, find_technologies
from memrelay.engine.domain.extraction.dates import anchor_relative_dates
from memrelay.engine.domain.extraction.keywords import content_stems, tokens
from memrelay.engine.domain.extraction.lexicon import NUMBER_WORDS, STOPWORDS
from memrelay.engine.domain.extraction.patterns import EMAIL_RE
from memrelay.engine.domain.extraction.sentences import sentence_spans

__all__ = ["Fact", "detect_kind", "drop_reason", "extract_facts", "neutral_subject"]


@dataclass(frozen=True)
class Fact:
    """One self-contained statement and where it came from (``content[start:end]``)."""

    text: str
    start: int
    end: int
    speaker: str | None = None
    kind: str = "document"


# --- line-level structure --------------------------------------------------------------------------------------

_LABEL_RE = re.compile(
    r"^\s*(?:\[?\(?\d{1,2}:\d{2}(?::\d{2})?\)?\]?\s*[-–]?\s*)?"
    r"(?:\*\*|__)?(?P<name>[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*){0,2})(?:\s*\((?P<role>[^)]{1,40})\))?"
    r"(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*(?P<rest>.*)$"
)
_NAME = r"[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*){0,2}"
_STAMP = r"(?:\[?\(?\d{1,2}:\d{2}(?::\d{2})?\)?\]?\s*[-–]?\s*)?"
# Other speaker-turn formats of meeting recorders: "Speaker 2 (Dana Reyes): ...", "Speaker 1 (Tom, Acme): ...",
# "Rep — Dana: ..." (a role before the name), and a name on its own line with a timestamp ("Dana Reyes  0:42")
# whose words follow on the next lines.
_NUMBERED_TURN_RE = re.compile(
    r"^\s*" + _STAMP + r"(?:speaker|participant|spk|caller)\s*\d{1,2}\s*\((?P<name>" + _NAME + r")(?:\s*,[^)]{0,40})?\)"
    r"\s*:\s*(?P<rest>.*)$", re.IGNORECASE)
_ROLE_TURN_RE = re.compile(
    r"^\s*" + _STAMP + r"(?:rep|ae|sdr|bdr|se|csm|am|host|guest|customer|prospect|client|interviewer|seller|buyer|"
    r"vendor|sales|moderator)\s*[—–-]\s*(?P<name>" + _NAME + r")\s*:\s*(?P<rest>.*)$", re.IGNORECASE)
_STAMPED_NAME_LINE_RE = re.compile(r"^\s*(?P<name>" + _NAME + r")\s+\(?\d{1,2}:\d{2}(?::\d{2})?\)?\s*$")
# Stage directions of transcripts: "[laughs]", "(inaudible)", "[crosstalk]".
_STAGE_DIRECTION_RE = re.compile(r"\[[a-z][a-z ,'-]{0,30}\]|\((?i:laughs?|laughter|sighs?|chuckles?|inaudible|"
                                 r"crosstalk|pause|coughs?|unclear)\)")
_GENERIC_LABEL_RE = re.compile(r"^\s*(?:[-*•]\s*)?(?P<label>[A-Za-z][\w /&'’().-]{0,32}?)\s*:\s+(?P<value>\S.*)$")
_HEADER_WORDS = (r"(?:from|to|cc|bcc|subject|date|sent|reply-to|re|fwd?|asunto|assunto|betreff|objet|onderwerp|"
                 r"oggetto|temat|von|an|de|para|envoyé|enviado|gesendet)")
# "Subject:", also bilingual clients' "Od / From:" (the local word, a slash, the English one).
_HEADER_RE = re.compile(r"^\s*(?:[^\W\d]{1,12}\s*/\s*)?" + _HEADER_WORDS + r"\s*:", re.IGNORECASE)
_FROM_RE = re.compile(r"^\s*(?:[^\W\d]{1,12}\s*/\s*)?(?:from|von|de)\s*:\s*(?P<value>.+)$", re.IGNORECASE)
# "Dana Reyes <dana@x.com> wrote on Tue, 17 Feb 2026, 09:12:" — a reply header naming the sender of what follows
# when the text after it is not quoted.
_WROTE_ON_RE = re.compile(r"^\s*(?P<name>[^<>@\n]{2,60}?)\s*(?:<[^>]+>)?\s+wrote\s+on\b.{0,80}:\s*$", re.IGNORECASE)
_WROTE_RE = re.compile(r"^\s*On\b.{0,200}\bwrote:\s*$|^\s*On\b.{0,200}$", re.IGNORECASE)
_WROTE_END_RE = re.compile(r"\bwrote:\s*$", re.IGNORECASE)
_ORIGINAL_RE = re.compile(r"^\s*-{2,}\s*(?:original message|forwarded message)\s*-{2,}", re.IGNORECASE)
_SIG_DASH_RE = re.compile(r"^\s*--\s*$|^\s*__+\s*$")
_SIGNOFF_RE = re.compile(
    r"^\s*(?:best|thanks|thank you|many thanks|thanks again|cheers|regards|kind regards|best regards|warm regards|"
    r"warmly|sincerely|talk soon|all the best|thx|br|yours|speak soon|best wishes|cordially|respectfully|"
    r"with thanks|thanks in advance|many thanks again|"
    # common sign-offs of European and Latin American correspondents
    r"pozdrawiam|pozdrowienia|abrazos?|saludos|un saludo|atentamente|cordialmente|beijinhos?|abraços?|"
    r"cumprimentos|tchau|ciao|grazie|cordiali saluti|cordialement|bien à vous|amitiés|groeten|"
    r"met vriendelijke groet(?:en)?|mvg|mit freundlichen grüßen|viele grüße|beste grüße|lg|mfg|hälsningar|"
    r"med vänlig hälsning|venlig hilsen|hilsen)"
    r"(?:\s*/\s*[^\W\d][\w ]{1,25})?\s*[,.!]?\s*(?:[-–—]\s*\w+)?\s*$",
    re.IGNORECASE,
)
_SALUTATION_RE = re.compile(r"^\s*(?:hi|hello|hey|dear|good (?:morning|afternoon))\b[^.!?]{0,40}[,!]?\s*$", re.IGNORECASE)
_SENT_FROM_RE = re.compile(r"^\s*sent from my\b", re.IGNORECASE)
_BULLET_RE = re.compile(r"^\s*(?:[-*•‣◦▪–—]+|\d{1,2}[.)])\s+")
# Labels that are CRM fields, not people.
_FIELD_LABELS = frozenset(
    """note notes budget stage deal stage timeline competitor competitors current solution headcount team size pain
    pain point pain points decision maker dm stack tech stack tech database db cloud location hq office renewal
    billing contact preference title role company next steps next step action items summary subject from to cc date
    re fwd update status owner source industry priority urgency funding framework call notes meeting notes agenda
    attendees participants context background overview risks risk tl;dr tldr ps p.s outcome goals goal challenge
    challenges website email phone crm product plan pricing price revenue arr deal value amount""".split()
) | {"next steps", "decision maker", "tech stack", "current solution", "team size", "pain points", "pain point",
     "deal stage", "contact preference", "action items", "call notes", "meeting notes", "renewal date",
     "renewal status", "billing frequency", "deal value", "next", "todo", "to do", "to-do", "action item",
     "follow-up", "follow up"}
# Label lines whose content is itself noise.
_NOISE_LABELS = frozenset({"next steps", "next step", "next", "todo", "to do", "to-do", "action items", "action item",
                           "follow-up", "follow up", "agenda", "attendees", "participants",
                           "subject", "to", "cc", "date", "sent", "from", "re", "fwd", "website", "email", "phone"})
# Labels whose value describes a contact's company rather than the person ("Funding: $22M Series B").
_COMPANY_LABELS = frozenset("""headcount hq location office funding industry revenue arr stack tech stack tech database
db cloud crm company size employees founded ownership hc infrastructure hosting""".split()) | {
    "tech stack", "current solution", "headquarters"}
_FIELD_PHRASES = {  # "Budget: $120k" -> "<subject>'s budget is $120k"
    "dm": "decision maker", "hq": "headquarters", "tech": "tech stack", "db": "database", "hc": "headcount",
    "bdgt": "budget", "comp": "competitor", "pain": "pain point",
    # CRM shorthand for the usual opportunity fields
    "now": "current solution", "today": "current solution", "curr": "current solution",
    "currently": "current solution", "current": "current solution", "incumbent": "current solution",
    "alt": "competitor", "alts": "competitor", "alternatives": "competitor", "comp/alt": "competitor",
    "competition": "competitor", "looked at": "competitor", "also evaluating": "competitor", "vs": "competitor",
    "econ": "decision maker", "eb": "decision maker", "economic buyer": "decision maker", "signer": "decision maker",
    "systems": "tech stack", "tools": "tech stack", "tooling": "tech stack", "infra": "infrastructure",
    "why now": "pain point", "problem": "pain point", "deadline": "timeline", "tgt": "timeline",
    "target": "timeline", "go-live": "timeline", "golive": "timeline", "hosting": "hosting",
}

# --- sentence-level rules ----------------------------------------------------------------------------------------

_FILLER_START_RE = re.compile(
    r"^(?:(?:oh|ah|um+|uh+|hmm+|well|so|okay|ok|alright|all right|yeah|yep|yes|right|sure|great|perfect|awesome|"
    r"absolutely|totally|exactly|definitely|cool|nice|wow|interesting|got it|makes sense|sounds good|sounds great|"
    r"no problem|no worries|of course|for sure|fair enough|love that|love it|good question|great question|"
    r"thanks|thank you|appreciate it|likewise|aligns perfect(?:ly)?|aligns|same here|hi|hello|hey|"
    r"good morning|good afternoon|morning|hi there|hey there|dear \w+|thanks so much|honestly|actually|basically|"
    r"frankly|look|listen|i mean|you know|anyway|and|but|plus|"
    # thanks and greetings of correspondents writing in other languages
    r"gracias|obrigad[oa]|merci|danke|grazie|dzi[eę]kuj[eę]|dank je|tack|hola|ol[aá]|bonjour|hallo|ciao|salut)"
    r"\b[\s,.!:;—–-]*)+",
    re.IGNORECASE,
)
_PLEASANTRY_RE = re.compile(
    r"^(?:(?:it'?s |it was |that'?s |that was )?(?:great|good|nice|lovely|a pleasure|awesome) (?:to|talking|chatting|"
    r"meeting|speaking|connecting|hearing)|(?:i )?hope (?:you|this|all|your)|(?:i'?m |we'?re )?looking forward|"
    r"(?:have|enjoy) a (?:great|good|nice|lovely)|how are you|how'?s it going|doing well|not bad|can'?t complain|"
    r"(?:i |we )?(?:really )?appreciate|thanks for|thank you for|glad (?:to|you|we)|happy to (?:help|chat|jump|hop)|"
    r"no worries|take care|talk (?:soon|then|to you)|see you|speak soon|bye|cheers|welcome|pleasure|"
    r"that'?s (?:great|awesome|helpful|super helpful|really helpful|fair|interesting|good to know|amazing|"
    r"a great|a common|exactly|so helpful|perfect|totally fair)|(?:that |this )?makes (?:total |a lot of )?sense|"
    r"good to know|love to hear|i hear you|i totally get|i get (?:it|that)|we'?ve seen (?:that|this)|"
    r"(?:we|i) see (?:that|this) (?:a lot|all the time)|you'?re not alone|that tracks|fair point|"
    r"(?:just )?(?:wanted|want) to (?:say|check in|follow up|touch base|circle back|thank)|quick (?:question|one)|"
    r"sorry (?:for|about|i)|apologies|hope that helps|let me know (?:if|what|when|how)|feel free|"
    r"(?:good|fine|great|pretty good|not bad)(?: at all)?,? (?:busy|hectic|thanks|thank you|as always)|"
    r"busy as always|pretty (?:hectic|busy|crazy)|bye for now|talk then|speak soon|same to you|thank god|"
    r"(?:say hi|say hello|give my best|my best) to|(?:it'?s|it is) (?:grey|gray|raining|sunny|snowing|freezing|"
    r"cold|hot|lovely) (?:and|in|here|out)|sunny in|raining in|(?:give|bear with) me (?:a|one) (?:second|sec|"
    r"moment|minute)|one (?:second|sec|moment)|sorry,? (?:one|just a) (?:second|sec|moment))\b",
    re.IGNORECASE,
)
_LOGISTICS_RE = re.compile(
    r"\b(?:calendar invite|send(?:ing)? (?:you |over |out )?(?:the |an? )?(?:invite|calendar|deck|recording|"
    r"link|agenda|recap|notes|summary|follow-up|proposal over|over)|(?:send|share|shoot) (?:it |that |them )?over|"
    r"i'?ll (?:send|share|loop|follow|set up|get|circle|put|shoot|forward|ping|reach|book|grab|check|dig|pull|"
    r"intro)|we'?ll (?:send|share|loop|follow up|set up|get back|circle|put together|shoot|book)|"
    r"(?:schedule|reschedule|book|set up|line up|find) (?:a |the |some |another |our |next )?(?:time|call|"
    r"meeting|demo|slot|follow-up|session|sync|chat)|(?:next|follow-up|follow up) (?:call|meeting|sync)|"
    r"does \w+ (?:work|suit)|works for (?:me|us|you)|(?:hop|jump) on (?:a|another)|touch base|circle back|"
    r"zoom link|meeting link|teams link|calendly|invite (?:for|on)|on (?:my|your|our) calendar|"
    r"talk (?:next|on) (?:week|monday|tuesday|wednesday|thursday|friday)|let'?s (?:meet|sync|talk|chat|plan|"
    r"schedule|reconvene|regroup|catch up|hop|set)|out of (?:the )?office|ooo\b|pto\b|running (?:a few minutes )?"
    r"late|dropping off|have a hard stop|hard stop|(?:can you|could you) hear me|you'?re on mute|screen ?share|"
    r"let'?s (?:do|say|aim for|go with|pencil|keep) (?:monday|tuesday|wednesday|thursday|friday|next|the|same|"
    r"\d)|same time (?:next|on|tomorrow)|(?:monday|tuesday|wednesday|thursday|friday|tomorrow)\b[\w ]{0,30}"
    r"\b(?:works|is good|is fine|suits)|\b(?:on|off) mute\b|(?:close|shut) the door)",
    re.IGNORECASE,
)
_INSTRUCTION_RE = re.compile(
    r"^(?:(?:please|also|kindly|and|then|now|pls|plz|just|so)\s+)*(?:extract|capture|include|add|record|fill(?: in)?|"
    r"update|make sure|ensure|remember to|don'?t forget|be sure|note that you|use the|return|output|list|"
    r"populate|tag|set|map|ignore|skip|summari[sz]e|send|email|call|ping|remind|follow up|schedule|book|"
    r"tell me|walk me through|talk me through|help me understand|let me (?:ask|know)|can you|could you|would you|"
    r"ask me|don'?t (?:send|forward|share|forget|worry|assume|tell|mention|cc)|give me|"
    r"feel free|reach out|check|review|confirm with|draft|prepare|loop in|share)\b",
    re.IGNORECASE,
)
_HEADING_RE = re.compile(r"^(?:account (?:note|notes|research brief|brief|summary|plan)|call (?:notes|summary|recap)|"
                         r"meeting (?:notes|recap|summary)|research brief|notes?|summary|recap|update|debrief)\b"
                         r"(?![^,.:;—–-]{0,40}\b(?:is|are|was|were|has|have|uses?|runs?)\b)|"
                         r"^[^.!?]{0,60}[—–-]\s*(?:account )?(?:research brief|notes|summary|brief|recap)\s*$",
                         re.IGNORECASE)
# To-do and next-step lines are plans of the rep, not facts about the entity; "transcript below" lines describe
# the document itself.
_TODO_RE = re.compile(r"^(?:next(?: steps?)?|to-?dos?|to do|action items?|actions?|follow[- ]ups?|f/u)\s*[:\-–—=>]",
                      re.IGNORECASE)
_DOC_META_RE = re.compile(r"\b(?:transcript|notes|recording|summary|details) (?:below|follows|attached)\b|"
                          r"\bnotes taken (?:live )?by\b", re.IGNORECASE)
# Document title lines: "Greywater Utilities, meeting notes", "Marigold Health Partners — discovery",
# "Sablewood Capital — Dimitri Volkov" (names around a dash, nothing stated).
_TITLE_LINE_RE = re.compile(
    r"^[A-Z][\w&.'’-]*(?:\s+(?:&|and|of|[A-Z][\w&.'’-]*)){0,5}\s*(?:,|[—–]|\s-)\s*"
    r"(?:(?:discovery|intro(?:ductory)?|demo|kick-?off|follow-?up|qbr|review|first|second|third)\s+)*"
    r"(?:meeting notes|call notes|notes|discovery|call|meeting|demo|recap|summary|debrief|sync)\b"
    r"(?:\s+(?:with|on|from)\b[^.;:,]{0,60})?\.?$|"
    r"^[A-Z][\w&.'’-]*(?:\s+[A-Z][\w&.'’-]*){0,4}\s*[—–]\s*[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*){0,3}\.?$")
_ASKING_RE = re.compile(r"\b(?:i'?m curious|i was wondering|i wonder|wanted to ask|quick question)\b", re.IGNORECASE)

# CRM shorthand, spelled out (whole tokens, case-insensitive unless noted).
_ABBREVIATIONS = {
    "w/": "with", "w/o": "without", "b/c": "because", "bc": "because", "mtg": "meeting", "mtgs": "meetings",
    "mgr": "manager", "mgmt": "management", "bdgt": "budget", "yr": "year", "yrs": "years", "mo": "month",
    "mos": "months", "qtr": "quarter", "eoq": "end of quarter", "eoy": "end of year", "eom": "end of month",
    "approx": "approximately", "ppl": "people", "emps": "employees", "eng": "engineering", "engs": "engineers",
    "mktg": "marketing", "dept": "department", "req": "requirement", "reqs": "requirements",
    "eval": "evaluation", "evals": "evaluations", "evaling": "evaluating", "curr": "currently",
    "cust": "customer", "custs": "customers", "impl": "implementation", "thru": "through", "poc": "proof of concept",
    "re:": "regarding", "appt": "appointment", "info": "information", "prob": "probably", "govt": "government",
    "hq'd": "headquartered", "hc": "headcount", "dm": "decision maker", "dms": "decision makers",
    "sr": "senior", "jr": "junior", "int'l": "international", "mgd": "managed", "convo": "conversation",
    "prev": "previously", "prev.": "previously", "w": "with", "abt": "about", "tmrw": "tomorrow",
    "wk": "week", "wks": "weeks", "fyi": "", "btw": "", "imo": "", "fwiw": "",
}
_CASE_SENSITIVE_ABBR = {"dm", "dms", "hc", "w", "eng", "mo", "prev", "int'l", "sr", "jr", "poc"}
_ABBR_RE = re.compile(r"(?<![\w/@.])(" + "|".join(re.escape(k) for k in sorted(_ABBREVIATIONS, key=len,
                                                                                   reverse=True)) + r")(?![\w/@])",
                      re.IGNORECASE)
_ARROW_RE = re.compile(r"\s*(?:->|→|=>)\s*")
_TILDE_RE = re.compile(r"(?<!\w)~\s*(?=[$€£\d])")

# Verb-first notes ("Uses Oracle", "Moved to AWS") get the subject; adjective-first ones get "is".
_VERB_FIRST = frozenset(
    """uses use using runs running wants needs plans planning looking evaluating considering moved migrated migrating
    switched switching hired hiring raised signed prefers has had owns manages leads expects asked mentioned said says
    confirmed reports reported spends spent pays paid works worked joined left leaving built building started starting
    launched launching opened closed renewed renews cancelled canceled churned chose chosen picked selected
    replaced replacing dropped dropping grew grown growing expanded expanding relocated moving runs
    budgeted allocated approved rejected struggles struggling complains complained loves likes dislikes hates
    shared noted flagged told explained described admitted agreed disagreed decided committed prefers sees
    targets targeting aims expecting needed wanted""".split()
)
_ADJECTIVE_FIRST = frozenset(
    """interested keen open concerned worried happy unhappy frustrated excited skeptical sceptical hesitant
    committed based located responsible focused blocked stuck ready eager reluctant price-sensitive
    currently""".split()
)
_PLURAL_POSSESSIVE_RE = re.compile(r"\b([A-Z][\w&.-]*[a-rt-z]s)['’]s\b")  # "TechFlow Labs's" -> "Labs'"
_GERUND_SUBJECT_FOLLOWERS = frozenset("has have is was are were will would can remains continues seems".split())
_UNRESOLVABLE_START = re.compile(r"^(?:this|that|these|those|it|they|he|she|which|who|there)\b(?:'s|’s)?\s",
                                 re.IGNORECASE)
_FIRST_PERSON = {
    "i'm": "{s} is", "i am": "{s} is", "i've": "{s} has", "i have": "{s} has", "i'll": "{s} will",
    "i'd": "{s} would", "i was": "{s} was", "i": "{s}", "me": "{s}", "my": "{s}'s", "mine": "{s}'s",
    "myself": "{s}",
}
_PLURAL_FIRST = {
    "we're": "{t} is", "we are": "{t} is", "we've": "{t} has", "we have": "{t} has", "we'll": "{t} will",
    "we'd": "{t} would", "we were": "{t} was", "we do": "{t} does", "we don't": "{t} doesn't",
    "we aren't": "{t} isn't", "we haven't": "{t} hasn't", "we": "{t}", "our": "{t}'s", "ours": "{t}'s",
    "us": "{t}",
}
_SECOND_PERSON = {
    "you're": "{s} is", "you are": "{s} is", "you've": "{s} has", "you have": "{s} has", "you'll": "{s} will",
    "you were": "{s} was", "you": "{s}", "your": "{s}'s", "yours": "{s}'s",
}
_NO_CONJUGATION = frozenset(
    """will would can could should might may must also just still currently already really only now actually
    definitely probably recently originally mostly usually typically always never often both all each even
    then not""".split()
)
_PHRASE_RE_CACHE: dict[tuple[str, ...], re.Pattern[str]] = {}
MIN_WORDS = 3


def neutral_subject(subject: str | None, entity_type: str | None = None) -> str | None:
    """``subject`` unless it is an email address (never written into a fact): then a neutral noun phrase."""
    if subject and not EMAIL_RE.search(subject):
        return subject
    if subject is None and entity_type is None:
        return None
    kind = (entity_type or "contact").lower()
    return {"contact": "The contact", "company": "The company", "deal": "The deal"}.get(kind, "The contact")


def detect_kind(content: str) -> str:
    """'transcript', 'email', 'crm_note' or 'document' (only used to describe the source)."""
    lines = [ln for ln in content.splitlines() if ln.strip()]
    if sum(1 for ln in lines if _HEADER_RE.match(ln)) >= 2 or any(_WROTE_END_RE.search(ln) for ln in lines):
        return "email"
    if lines and _SALUTATION_RE.match(lines[0]) and any(_SIGNOFF_RE.match(ln) for ln in lines[1:]):
        return "email"  # a pasted message body: "Hi Alex," ... "Cheers,\nMaya"
    if len(_speakers(lines)) >= 2:
        return "transcript"
    if lines and sum(len(ln.split()) for ln in lines) / len(lines) < 12:
        return "crm_note"
    return "document"


def _turn(line: str) -> tuple[str, int, bool] | None:
    """(speaker name, offset of the words said, explicit) when ``line`` opens a speaker turn in one of the
    recorders' formats; ``explicit`` formats ("Speaker 2 (Dana):", "Rep — Dana:", "**Dana:**") need no second turn
    to count as a transcript."""
    for pattern in (_NUMBERED_TURN_RE, _ROLE_TURN_RE):
        m = pattern.match(line)
        if m:
            return m.group("name"), m.start("rest"), True
    m = _STAMPED_NAME_LINE_RE.match(line)
    if m and m.group("name").lower() not in _FIELD_LABELS:
        return m.group("name"), len(line), False
    m = _LABEL_RE.match(line)
    if (not m or m.group("name").lower() in _FIELD_LABELS or m.group("name").lower() in _FIELD_PHRASES
            or _HEADER_RE.match(line)):
        return None
    return m.group("name"), m.start("rest"), line.lstrip().startswith(("**", "__"))


def _speakers(lines: list[str]) -> set[str]:
    """Labels used as speaker turns: a name (not a CRM field) labelling two or more lines, or an explicit turn."""
    counts: dict[str, int] = {}
    explicit: set[str] = set()
    for ln in lines:
        turn = _turn(ln)
        if turn is None:
            continue
        name = turn[0]
        counts[name] = counts.get(name, 0) + 1
        if turn[2]:
            explicit.add(name)
    found = {n for n, c in counts.items() if c >= 2} | explicit
    # once the text is a conversation, a name labelling a single line is a speaker too
    return set(counts) if found else found


@dataclass
class _Unit:
    start: int
    end: int
    speaker: str | None
    label: str | None = None  # CRM field label ("Budget") when the unit is "Label: value"


def _units(content: str) -> tuple[list[_Unit], str]:
    """Speaker turns, email message bodies, paragraphs and label lines, with quotes/headers/signatures removed."""
    lines: list[tuple[int, str]] = []
    pos = 0
    for raw in content.splitlines(keepends=True):
        lines.append((pos, raw.rstrip("\r\n")))
        pos += len(raw)
    speakers = _speakers([ln for _, ln in lines])
    kind = detect_kind(content)
    units: list[_Unit] = []
    sender: str | None = None
    speaker: str | None = None
    skipping = False  # inside a quoted reply / signature / original message
    skip_to_end = False
    message_start = 0  # index in ``units`` of the current email message's first unit
    first_line = True
    i = 0
    while i < len(lines):
        at, line = lines[i]
        stripped = line.strip()
        i += 1
        if skip_to_end:
            break
        if _FROM_RE.match(line) and kind == "email":
            skipping, sender, speaker = False, _sender_name(_FROM_RE.match(line).group("value")), None  # type: ignore[union-attr]
            message_start = len(units)
            continue
        if skipping:
            continue
        if not stripped:
            speaker = None if kind != "transcript" else speaker
            continue
        if first_line:
            first_line = False
            if _is_title_line(stripped):
                continue
        if _ORIGINAL_RE.match(line):
            skip_to_end = True
            continue
        if stripped.startswith(">"):
            continue
        nxt = next((ln.strip() for _, ln in lines[i:i + 3] if ln.strip()), "")
        wrote_on = _WROTE_ON_RE.match(line)
        if wrote_on and not nxt.startswith(">"):
            sender, skipping, message_start = _sender_name(wrote_on.group("name")), False, len(units)
            continue
        if _contact_line(stripped):
            continue
        if kind == "email" and len(units) > message_start and (
                _generic_signoff(stripped, nxt) or _signature_start(stripped, sender, nxt)):
            if not sender and _name_like(nxt):
                sender = _sender_name(nxt)
            skipping = True
            continue
        if _WROTE_END_RE.search(line) or (re.match(r"^\s*On\b", line) and i < len(lines)
                                           and _WROTE_END_RE.search(lines[i][1]) and len(line) < 200):
            skipping = True
            continue
        if _HEADER_RE.match(line) or _SENT_FROM_RE.match(line):
            continue
        if _SIG_DASH_RE.match(line) or (_SIGNOFF_RE.match(line) and kind != "transcript"):
            nxt = next((ln.strip() for _, ln in lines[i:i + 2] if ln.strip()), "")
            if nxt and len(nxt.split()) <= 4 and nxt[:1].isupper() and not sender:
                sender = _sender_name(nxt)
                for u in units:
                    if u.speaker is None and u.label is None and kind == "email":
                        u.speaker = sender
            skipping = True
            continue
        turn = _turn(line)
        if turn is not None and turn[0] in speakers:
            speaker = turn[0]
            if line[turn[1]:].strip():
                units.append(_Unit(at + turn[1], at + len(line), speaker))
            continue
        body_at = at
        bullet = _BULLET_RE.match(line)
        if bullet:
            body_at = at + bullet.end()
        g = _GENERIC_LABEL_RE.match(line[body_at - at:])
        if g and kind != "transcript" and g.group("label").strip().lower() in _FIELD_LABELS | set(_FIELD_PHRASES):
            label = g.group("label").strip()
            if label.lower() in _NOISE_LABELS:
                continue
            units.append(_Unit(body_at + g.start("value"), at + len(line), None, label))
            continue
        owner = speaker if kind == "transcript" else sender
        prev = units[-1] if units else None
        if (prev is not None and prev.label is None and prev.speaker == owner and not bullet
                and content[prev.end:body_at].count("\n") == 1 and stripped[:1].islower()):
            prev.end = at + len(line)  # a wrapped line continues the paragraph
        else:
            units.append(_Unit(body_at, at + len(line), owner))
    return units, kind


_DOC_TYPE_RE = re.compile(r"\b(?:transcripts?|export|recording|notes|brief|research|debrief|recap|summary|background|"
                          r"profile|minutes|write-?up|dossier|one-pager)\b", re.IGNORECASE)
_MEETING_WORD_RE = re.compile(r"\b(?:call|meeting|demo|discovery|intro|sync|session|kick-?off|qbr|workshop|"
                              r"onboarding|check-?in)\b", re.IGNORECASE)
_PHONE_LINE_RE = re.compile(r"(?:\+|\(?\b0)\d[\d ()./-]{6,}\d")
_NAME_LINE_RE = re.compile(r"^[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*){0,3}$")


def _is_title_line(line: str) -> bool:
    """A document's first line naming what the document is ("Discovery call — Acme — transcript", "[Zoom transcript,
    auto-generated]", "Research: Acme Ltd"), not a statement."""
    line = line.strip("*_# ")
    if line.startswith("[") and line.endswith("]"):
        return True
    if len(line.split()) > 16 or line.endswith((".", "!", "?")) or re.search(
            r"\b(?:is|are|was|were|has|have|uses?|wants?|needs?)\b", line):
        return False
    return bool(_DOC_TYPE_RE.search(line) or (re.search(r"\s[—–|]\s|\s-\s", line) and _MEETING_WORD_RE.search(line)))


def _contact_line(line: str) -> bool:
    """A signature's contact line: a phone number, email address or web address with a few words around it
    ("Berlin · +49 30 5550 1184", "m: 555-0148 | dana@acme.com")."""
    found = _PHONE_LINE_RE.search(line) or EMAIL_RE.search(line) or re.search(r"\bwww\.|https?://", line)
    if not found:
        return False
    rest = EMAIL_RE.sub(" ", _PHONE_LINE_RE.sub(" ", line))
    rest = re.sub(r"\S*(?:www\.|https?://)\S*", " ", rest)
    return len(re.findall(r"[^\W\d]{2,}", rest)) <= 5 and not rest.rstrip().endswith((".", "?", "!"))


def _name_like(line: str) -> bool:
    return bool(_NAME_LINE_RE.match(line.strip(" ,"))) and len(line.split()) <= 4


def _generic_signoff(line: str, following: str) -> bool:
    """A short closing phrase ending in a comma ("Un abrazo,", "Warmest,") followed by a name line: a sign-off in
    any language."""
    return (line.endswith(",") and len(line.split()) <= 4 and not _SALUTATION_RE.match(line)
            and _name_like(following))


def _signature_start(line: str, sender: str | None, following: str = "") -> bool:
    """A signature block without a sign-off: a short line opening with the sender's name ("Dana Reyes, CISSP",
    "Dana Reyes | VP Sales")."""
    if len(line.split()) > 10 or line.endswith((".", "!", "?")):
        return False
    if _title_line(line) or (_name_like(line) and _title_line(following)):
        return True  # "Dana Reyes" above "Head of Sales | Brightpath Labs", or the title line itself
    if not sender or len(sender.split()) < 2:
        return False
    return line.lower().startswith(sender.lower()) and (len(line) == len(sender) or line[len(sender)] in " ,|·–—-")


def _title_line(line: str) -> bool:
    """A signature's title line: a job title, then the company after '|', ',', '·', '@' or 'at'."""
    return bool(re.match(r"^" + _ROLE_START_RE.pattern + r"[^.!?]{0,60}?(?:\s[|·@–—]\s|,\s|\sat\s)[A-Z][^.!?]{0,60}$",
                         line.strip()))


def _sender_name(value: str) -> str | None:
    value = EMAIL_RE.sub("", value).replace("<>", "").strip(" <>\"'")
    value = re.sub(r"\s*[|,].*$", "", value).strip()
    return value if value and len(value.split()) <= 4 and value[:1].isupper() else None


# --- rewriting ---------------------------------------------------------------------------------------------------


def _phrase_re(keys: tuple[str, ...]) -> re.Pattern[str]:
    pattern = _PHRASE_RE_CACHE.get(keys)
    if pattern is None:
        body = "|".join(re.escape(k).replace("'", "['’]") for k in sorted(keys, key=len, reverse=True))
        pattern = re.compile(rf"(?<![\w'’-])(?:{body})(?![\w'’-])", re.IGNORECASE)
        _PHRASE_RE_CACHE[keys] = pattern
    return pattern


_MODALS = frozenset("""will would can could should might may must did didn't won't can't wouldn't couldn't
shouldn't""".split())
_IRREGULAR_PAST = frozenset("""had was did said ran got went made took came saw put set cut let began grew built left
spent paid sent kept told felt found brought bought thought led met won lost chose became hit sold""".split())
_NEGATED_THIRD = {"don't": "doesn't", "haven't": "hasn't", "aren't": "isn't", "weren't": "wasn't", "do": "does",
                  "have": "has", "are": "is", "were": "was", "go": "goes"}


def _third_person(verb: str) -> str:
    low = verb.lower().replace("’", "'")
    if low in _NEGATED_THIRD:
        return _NEGATED_THIRD[low]
    if (low in _NO_CONJUGATION or low in _MODALS or low in _IRREGULAR_PAST or not low.isalpha()
            or (low.endswith("ed") and not low.endswith("eed")) or (low.endswith("s") and not low.endswith("ss")) or low in _NOT_VERBS):
        return verb
    if low.endswith(("sh", "ch", "x", "z", "ss", "o")):
        return verb + "es"
    if low.endswith("y") and len(low) > 2 and low[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


_NOT_VERBS = frozenset("and or but the a an to of in on at for with as so if".split())
_WORD_AHEAD_RE = re.compile(r"(\s+)([A-Za-z'’]+)")


def _replace_people(text: str, table: dict[str, str], value: str, *, conjugate: bool) -> str:
    """Replace pronoun phrases of ``table`` ({s}/{t} -> ``value``); a bare subject pronoun conjugates its verb."""
    pattern = _phrase_re(tuple(table))
    out: list[str] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.start() < pos:
            continue
        key = m.group(0).lower().replace("’", "'")
        out.append(text[pos:m.start()])
        out.append(table[key].replace("{s}", value).replace("{t}", value))
        pos = m.end()
        if not (conjugate and key in ("i", "we", "you")):
            continue
        nxt = _WORD_AHEAD_RE.match(text, pos)
        if not nxt:
            continue
        word = nxt.group(2).lower()
        if word in _MODALS:
            continue
        if word in _NO_CONJUGATION:
            after = _WORD_AHEAD_RE.match(text, nxt.end())
            if after and after.group(2).lower() not in _MODALS | _NO_CONJUGATION:
                out.append(text[pos:after.start(2)] + _third_person(after.group(2)))
                pos = after.end()
            continue
        out.append(nxt.group(1) + _third_person(nxt.group(2)))
        pos = nxt.end()
    out.append(text[pos:])
    return "".join(out)


def _expand_abbreviations(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        word = m.group(1)
        key = word.lower()
        if key in _CASE_SENSITIVE_ABBR and key in ("dm", "dms", "hc", "poc") and not word.isupper():
            return word
        if key in ("w", "eng", "mo", "sr", "jr", "prev") and word != key and word != key.capitalize():
            return word
        if key == "w" and not text[m.end():m.end() + 1] == "/":
            return word
        return _ABBREVIATIONS[key]

    text = _ARROW_RE.sub(" to ", text)
    text = _TILDE_RE.sub("about ", text)
    text = _ABBR_RE.sub(repl, text)
    return re.sub(r"\s{2,}", " ", text).strip()


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _subject_first(sentence: str, subject: str) -> str:
    """Verb- or adjective-first notes get the subject: "Uses Oracle" -> "<subject> uses Oracle"."""
    first, _, rest = sentence.partition(" ")
    word = first.lower().strip(",:;")
    second = rest.split(" ", 1)[0].lower() if rest else ""
    if second in _GERUND_SUBJECT_FOLLOWERS:
        return sentence  # "Hiring has focused on ..." — the -ing word is the subject
    if word == "team" and second == "of":
        return f"{subject} has a team {rest}".strip()
    if word in _VERB_FIRST:
        return f"{subject} {word} {rest}".strip()
    if word in _ADJECTIVE_FIRST:
        return f"{subject} is {word} {rest}".strip()
    return sentence


def _resolve_third_person(sentence: str, subject: str, *, person: bool = False, company: str | None = None) -> str:
    """A leading He/She/They/It (or His/Her/Their) becomes the subject; about a person, "they"/"their" usually
    mean the person's company, so they become "<subject>'s company"."""
    first, _, rest = sentence.partition(" ")
    if person and first.lower().rstrip(",").replace("’", "'") in ("they", "their", "they're", "they've",
                                                                    "they'll", "they'd"):
        named = any(w.lower() in rest.lower() for w in subject.split() if len(w) > 2)
        subject = company or ("The company" if named else f"{subject}'s company")
    bare = first.rstrip(",").lower().replace("’", "'")
    contraction = re.fullmatch(r"(they|he|she)'(re|ve|s|ll|d)", bare)
    if contraction:
        verb = {"re": "is", "ve": "has", "s": "is", "ll": "will", "d": "would"}[contraction.group(2)]
        return f"{subject} {verb} {rest}".rstrip()
    if bare in ("his", "her", "their"):
        return f"{subject}'s {rest}"
    if bare in ("he", "she", "they"):
        verb, _, tail = rest.partition(" ")
        agreement = {"are": "is", "were": "was", "have": "has", "do": "does", "don't": "doesn't",
                     "aren't": "isn't", "weren't": "wasn't", "haven't": "hasn't"}
        if bare == "they" and verb.lower() in agreement:
            rest = f"{agreement[verb.lower()]} {tail}".rstrip()
        elif bare == "they":
            rest = f"{_third_person(verb)} {tail}".rstrip()
        return f"{subject} {rest}"
    return sentence


_ROLE_AUTHORS = frozenset("user assistant system bot ai agent human tool model customer".split())


def _is_name(author: str | None) -> bool:
    return bool(author) and "@" not in (author or "") and any(c.isalpha() for c in author or "") and (
        (author or "").strip().lower() not in _ROLE_AUTHORS)


def _same_name(a: str, b: str) -> bool:
    return bool({w.lower() for w in a.split()} & {w.lower() for w in b.split() if len(w) > 1})


def _anchor_subject(text: str, subject: str | None, company: str | None) -> str:
    """A fact that names neither the entity nor its company gets the company as its setting:
    "Final sign-off moved to Priya Nair" -> "At Lumen Systems, final sign-off moved to Priya Nair"."""
    if not company:
        return text
    low = text.lower()
    names = [w for n in (subject, company) if n for w in n.split() if len(w) > 2]
    if any(w.lower() in low for w in names) or (subject and low.startswith(subject.lower())):
        return text
    first, _, rest = text.partition(" ")
    second = rest.split(" ", 1)[0] if rest else ""
    keep_case = first.isupper() or any(c.isupper() for c in first[1:]) or second[:1].isupper() or first == "I"
    return f"At {company}, {first if keep_case else first.lower()} {rest}".strip()


def _label_fact(label: str, value: str, subject: str) -> str:
    name = _FIELD_PHRASES.get(label.lower(), label.lower())
    value = value.strip().rstrip(".")
    if name in ("note", "notes", "summary", "context", "background", "overview", "update", "tl;dr", "tldr",
                "call notes", "meeting notes", "outcome", "ps", "p.s", "risks", "risk", "challenges", "goals",
                "goal"):
        return value
    if value.split(" ", 1)[0].lower() in _VERB_FIRST:  # "Funding: raised $30M in 2025" -> "<subject> raised ..."
        return f"{subject} {value[:1].lower()}{value[1:]}"
    return f"{subject}'s {name} is {value}" if value[:1].isalnum() or value[:1] in "$€£~" else f"{subject}'s {name}: {value}"


# --- what is a fact ----------------------------------------------------------------------------------------------


_NUMBER_WORD_RE = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, NUMBER_WORDS), key=len, reverse=True)) + r")\b",
                             re.IGNORECASE)
_CAPITALISED_RE = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w&'’.-]+")


def _informative(text: str, ignore: set[str]) -> bool:
    """A number, money, date, technology, role, deal stage or a name other than ``ignore``."""
    if re.search(r"\d", text) or find_technologies(text) or find_roles(text) or find_deal_stages(text):
        return True
    if _NUMBER_WORD_RE.search(text):
        return True
    for m in _CAPITALISED_RE.finditer(text):
        word = re.sub(r"['’]s$", "", m.group(0)).lower()
        if word not in ignore and word not in STOPWORDS and word not in ("i", "i'm", "i've", "i'll", "i'd"):
            return True
    return False


def drop_reason(sentence: str) -> str | None:
    """Why a sentence is not a fact ('question', 'instruction', 'logistics', 'pleasantry', 'filler', 'heading',
    'fragment'), or None when it is kept."""
    return _drop_reason(sentence)


@lru_cache(maxsize=16384)
def _drop_reason(sentence: str) -> str | None:
    s = sentence.strip().strip("*_").strip()
    if not any(c.isalpha() for c in s):
        return "empty"
    if (_HEADING_RE.match(s) and len(s.split()) <= 10) or _DOC_META_RE.search(s) or (
            _TITLE_LINE_RE.match(s) and not find_roles(s)):
        return "heading"
    if _TODO_RE.match(s):
        return "logistics"
    if s.endswith(":") and not re.search(r"\d", s):
        return "heading"  # a line introducing what follows ("Two things from the security team:")
    if s.endswith("?") or _ASKING_RE.search(s):
        return "question"
    if _INSTRUCTION_RE.match(s):
        return "instruction"
    if _LOGISTICS_RE.search(s):
        return "logistics"
    if _PLEASANTRY_RE.match(s):
        return "pleasantry"
    rest = _FILLER_START_RE.sub("", s, count=1).strip()
    if rest != s:
        if len(re.findall(r"[\w$€£]+", rest)) < MIN_WORDS or _PLEASANTRY_RE.match(rest):
            return "filler"
        if _INSTRUCTION_RE.match(rest) or rest.endswith("?"):
            return "instruction"
    words = re.findall(r"[\w$€£%]+", s)
    if len(words) < MIN_WORDS and not (len(words) == 2 and re.search(r"\d", s)):
        return "fragment"
    return None


# Words that carry no claim of their own: hedges, fillers and vague nouns ("honestly, mostly the carrier desk").
_EMPTY_WORDS = frozenset("""actually honestly basically frankly literally really mostly probably maybe perhaps kind sort
like yeah yes okay ok well right sure thing things stuff something anything everything nothing one ones lot lots
bit pretty quite still even already though anyway guess think mean know get got go going gonna want let lets
say said see look good great fine nice end time way part realistically ideally hopefully roughly because here now
then""".split())
_STRONG_CUE_RE = re.compile(r"\d|[$€£%]|\bMay\b|\b(?i:jan(?:uary)?|feb(?:ruary)?|march|april|june|july|aug(?:ust)?|"
                            r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|q[1-4])\b")


def _has_substance(text: str, ignore: set[str], *, conversation: bool) -> bool:
    """Enough words of its own to be a claim: three content words beyond the names of the entity, the speaker and
    the company ("That's Bram.", "End of June.", "You get used to it." are not), two in terse notes or with a
    number, technology or role ("I'm Head of Wholesale.", "Uses Oracle.")."""
    words = [w for w in (re.sub(r"['’]s$", "", t) for t in tokens(text))
             if w not in STOPWORDS and w not in _EMPTY_WORDS and w not in ignore
             and re.split(r"['’]", w)[0] not in STOPWORDS]  # "we're", "don't", "that's"
    if len(words) >= 3:
        return True
    strong = bool(_STRONG_CUE_RE.search(text) or find_technologies(text) or find_roles(text)
                  or find_deal_stages(text) or re.search(r"\b" + _ROLE_START_RE.pattern, text))
    if len(words) == 2:
        return strong or not conversation
    return len(words) == 1 and strong and not conversation


def _is_clause(text: str) -> bool:
    """Three words or more with a verb (an auxiliary, a known claim verb or a past participle): a clause that
    can stand alone, not the tail of a list ("...; regulated deployment expectations")."""
    words = text.split()
    return len(words) >= 3 and any(
        _FINITE_RE.fullmatch(w) or w.lower() in _CLAIM_VERBS or w.lower() in _MODALS
        or (w.lower().endswith("ed") and len(w) > 4) for w in (w.strip(",.()") for w in words))


def _pieces(block: str, label: str | None) -> list[tuple[int, int, str | None]]:
    """The single claims of a block: its sentences, each split again at semicolons between clauses ("uses Oracle;
    moving to AWS in Q3"); a CRM label ("Funding: ...") names the first of them only."""
    out: list[tuple[int, int, str | None]] = []
    spans = sentence_spans(block)
    inline = [_GENERIC_LABEL_RE.match(block[a:b]) for a, b in spans]
    if label and any(inline[1:]):
        names = [m.group("label").strip().lower() for m in inline[1:] if m]
        if any(n in _NOISE_LABELS for n in names):
            return [(0, len(block), label)]  # "Stage: negotiation. Next step: legal review." stays one record
        pieces: list[tuple[int, int, str | None]] = [(*spans[0], label)]
        for (a, b), m in zip(spans[1:], inline[1:], strict=True):
            known = m is not None and m.group("label").strip().lower() in _FIELD_LABELS | set(_FIELD_PHRASES)
            pieces.append((a + m.start("value"), b, m.group("label").strip()) if known and m else (a, b, None))
        return pieces
    for a, b in spans:
        start = a
        for m in re.finditer(r";\s+", block[a:b]):
            cut = a + m.start()
            if _is_clause(block[start:cut]) and _is_clause(block[a + m.end():b]):
                out.append((start, cut, None))
                start = a + m.end()
        out.append((start, b, None))
    if label and out:
        out[0] = (out[0][0], out[0][1], label)
    return out


def _strip_filler_opening(sentence: str) -> str:
    rest = _FILLER_START_RE.sub("", sentence, count=1).strip()
    return _capitalise(rest) if rest and rest != sentence else sentence


def _fact_key(text: str) -> tuple[str, ...]:
    return tuple(sorted(set(content_stems(text))))


def extract_facts(content: str, *, subject: str | None, ts: datetime, entity_type: str | None = None,
                  company: str | None = None, author: str | None = None) -> list[Fact]:
    """Self-contained facts about the entity named ``subject`` (see module docstring), in source order.
    ``company`` (a contact's company) names what the entity's "we"/"our" means; ``author`` (the memorize
    request's ``speaker``, when it is a name) is who "I" is in unlabelled text such as a chat message or a note."""
    subject = neutral_subject(subject, entity_type)
    units, kind = _units(content)
    subject_low = (subject or "").lower()
    subject_tokens = {t for t in tokens(subject_low) if t not in STOPWORDS} if subject else set()
    entity_speaker = {u.speaker for u in units if u.speaker and subject_tokens
                      and set(tokens(u.speaker.lower())) & subject_tokens}
    is_company = (entity_type or "").lower() == "company"
    company_tokens = {t for t in tokens((company or "").lower()) if t not in STOPWORDS}
    heads = sorted({h for h in (subject, company) if h}, key=len, reverse=True)
    facts: list[Fact] = []
    seen: set[tuple[str, ...]] = set()
    for unit in units:
        block = content[unit.start:unit.end]
        speaker = unit.speaker
        is_entity = speaker is None or speaker in entity_speaker or not entity_speaker and kind != "transcript"
        person = subject if (speaker is None or speaker in entity_speaker) and subject else speaker
        by_author = speaker is None and kind not in ("transcript", "email") and _is_name(author)
        if by_author:
            person = subject if subject and _same_name(author or "", subject) else author
        ignore = set(tokens((speaker or "").lower())) | subject_tokens  # names that do not make a fact informative
        own_names = ignore | company_tokens  # words that are not a claim's own
        for a, b, label in _pieces(block, unit.label):
            raw = _STAGE_DIRECTION_RE.sub(" ", block[a:b]) if kind == "transcript" else block[a:b]
            raw = " ".join(raw.split()).strip("*_ ").strip()
            if label:
                if not raw:
                    continue
                if _drop_reason(raw) in ("question", "logistics", "instruction"):
                    continue
                field = _FIELD_PHRASES.get(label.lower(), label.lower())
                owner = company if company and not is_company and field in _COMPANY_LABELS else subject
                text = _label_fact(label, _expand_abbreviations(raw), owner or "The record")
            else:
                reason = _drop_reason(raw)
                if reason and not (reason == "fragment" and subject and raw.split(" ", 1)[0].lower().strip(",.")
                                   in _VERB_FIRST | _ADJECTIVE_FIRST):
                    continue  # a verb-first fragment ("Pays monthly.") becomes a fact once it has its subject
                text = _strip_filler_opening(_expand_abbreviations(raw))
                if _drop_reason(text) not in (None, "fragment"):
                    continue
                if not is_entity and not _informative(text, ignore):
                    continue
                if not _has_substance(text, own_names, conversation=kind == "transcript" or speaker is not None):
                    continue
                if person and (speaker is not None or kind == "email" or by_author):
                    # first person means the speaker/sender; in a rep's own notes and briefs "I"/"we" is the rep
                    team = subject if is_company and subject else (
                        company if company and person == subject else f"{person}'s team")
                    text = _replace_people(text, _FIRST_PERSON, person, conjugate=True)
                    text = _replace_people(text, _PLURAL_FIRST, team, conjugate=True)
                if speaker and speaker not in entity_speaker and subject and entity_speaker:
                    text = _replace_people(text, _SECOND_PERSON, subject, conjugate=True)
                if subject:
                    if kind != "transcript":
                        text = _resolve_third_person(text, subject, person=not is_company, company=company)
                    text = _subject_first(text, subject)
                if _UNRESOLVABLE_START.match(text) and not _informative(text, ignore):
                    continue
                text = _name_colon_role(text)
                if kind != "transcript":
                    text = _describe_company(text, company if not is_company else subject)
                text = _anchor_subject(text, subject, company if not is_company else subject)
                if _drop_reason(text):
                    continue
            for claim in _split_claims(text, heads):
                claim = _capitalise(anchor_relative_dates(_PLURAL_POSSESSIVE_RE.sub(r"\1'", claim), ts).strip())
                if claim and claim[-1] not in ".!?\"'":
                    claim += "."
                key = _fact_key(claim)
                if not key or key in seen:
                    continue
                seen.add(key)
                facts.append(Fact(claim, unit.start + a, unit.start + b, speaker, kind))
    return facts


# Third-person verbs that open a further claim about the same subject: "Acme uses Oracle, has 400 staff and plans
# to move to AWS by Q3" is three claims.
_CLAIM_VERBS = frozenset("""uses runs wants needs plans has had is was owns manages leads expects employs operates
sells serves builds relies hopes intends aims prefers spends pays works hires raised signed moved migrated switched
chose selected replaced dropped grew expanded relocated budgeted approved rejected struggles targets evaluates
considers looked reports opened closed renewed launched started joined left""".split())


_ROLE_START_RE = re.compile(r"(?:(?:Senior|Sr\.?|Principal|Lead|Global|Regional|Group|Associate|Executive|Interim|"
                            r"Deputy|Assistant|Founding)\s+)?(?:VP|SVP|EVP|Vice President|Head|Director|Manager|"
                            r"Chief|CEO|CTO|CFO|COO|CMO|CRO|CIO|CISO|CPO|Founder|Co-[Ff]ounder|President|Partner|"
                            r"Owner|Lead)\b")
_NAME_COLON_RE = re.compile(r"^(?P<name>[A-Z][\w.'’-]+(?:\s+[A-Z][\w.'’-]+){1,2}):\s+(?P<rest>.+)$")


def _name_colon_role(text: str) -> str:
    """"Dana Reyes: Head of Talent since 2024" -> "Dana Reyes is Head of Talent since 2024"."""
    m = _NAME_COLON_RE.match(text)
    if m and _ROLE_START_RE.match(m.group("rest")):
        return f"{m.group('name')} is {m.group('rest')}"
    return text


_ORG_NOUNS = (r"company|manufacturer|provider|firm|agency|platform|brand|start-?up|scale-?up|maker|distributor|"
              r"retailer|consultancy|bank|insurer|developer|vendor|supplier|operator|group|business|studio|biotech|"
              r"producer|marketplace|forwarder|broker|school|university|hospital|clinic|charity|council|"
              r"organi[sz]ation|non-?profit|lender|fintech|publisher|wholesaler|integrator|reseller|carrier|chain")
_DESCRIPTION_RE = re.compile(r"^(?P<article>an?\s+)?(?P<words>(?:[\w&/'’-]+\s+){0,6}?)(?:" + _ORG_NOUNS + r")\b",
                             re.IGNORECASE)
_FINITE_RE = re.compile(r"\b(?:is|are|was|were|has|have|had|will|would|can|does|do|did)\b", re.IGNORECASE)


def _describe_company(text: str, company: str | None) -> str:
    """A brief's subject-less description of the company ("Family-owned metal stamping manufacturer in Leeds,
    founded in 1994.") gets the company as its subject: "Acme is a family-owned metal stamping manufacturer ..."."""
    if not company or company.lower() in text.lower():
        return text
    m = _DESCRIPTION_RE.match(text)
    clause = re.split(r"[,;:(—–]", text, maxsplit=1)[0]
    modifiers = [w.lower() for w in m.group("words").split()] if m else []
    if not m or not (m.group("article") or modifiers) or _FINITE_RE.search(clause) or any(
            w.lower() in _CLAIM_VERBS for w in clause.split()) or any(
            w in STOPWORDS and w not in ("and", "&") for w in modifiers) or [w.lower() for w in m.group("words").split()[:1]] in (
            ["the"], ["this"], ["our"], ["their"], ["its"], ["his"], ["her"], ["my"], ["your"]):
        return text
    body = text[m.end("article"):] if m.group("article") else text
    first = body.split(" ", 1)[0]
    if any(c.isupper() for c in first[1:]):
        return text  # "IBM ...", "McKinsey ..." — a name, not a description
    if not (first.split("-")[0].lower().endswith(("ish", "an", "ese", "ic", "ch"))
            or re.search(r"-(?:based|headquartered|listed|born)$", first)):
        body = body[:1].lower() + body[1:]  # "Family-owned ..." — capitalised only as the sentence's first word
    article = m.group("article").strip() if m.group("article") else ("an" if body[:1].lower() in "aeiou" else "a")
    return f"{company} is {article.lower()} {body}"


def _split_claims(text: str, heads: list[str]) -> list[str]:
    """A sentence whose subject (one of ``heads``) has several verb phrases becomes one claim per phrase, each
    with the subject: "Acme uses Oracle, has 400 staff and plans to move to AWS by Q3" -> "Acme uses Oracle.",
    "Acme has 400 staff.", "Acme plans to move to AWS by Q3."."""
    head = next((h for h in heads if text.startswith(h + " ")), None)
    if head is None:
        return [text]
    body = text[len(head) + 1:].rstrip(".")
    cuts = [m for m in re.finditer(r"(?:,\s+(?:and\s+)?|\s+and\s+)(?=(\w+)\b)", body)
            if m.group(1).lower() in _CLAIM_VERBS]
    if not cuts:
        return [text]
    parts, start = [], 0
    for m in cuts:
        parts.append(body[start:m.start()])
        start = m.end()
    parts.append(body[start:])
    if any(len(p.split()) < 2 for p in parts):
        return [text]
    return [f"{head} {p.strip()}" for p in parts]
