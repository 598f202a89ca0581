"""The n8n node types templates may use, with the typeVersions n8n 2.41.1 accepts (checked against the
installed ``n8n-nodes-base`` node descriptions), and the document validator."""

from __future__ import annotations

from typing import Any

N8N_VERSION = "2.41.1"
MEMRELAY_NODE = "n8n-nodes-memrelay.memrelay"
MEMRELAY_TRIGGER = "n8n-nodes-memrelay.memrelayTrigger"

# type → (version templates use, versions n8n 2.41.1 knows; the memrelay ones: n8n-nodes-memrelay 0.1.0)
NODE_TYPES: dict[str, tuple[float, frozenset[float]]] = {
    "n8n-nodes-base.manualTrigger": (1, frozenset({1})),
    "n8n-nodes-base.webhook": (2.1, frozenset({1, 1.1, 2, 2.1})),
    "n8n-nodes-base.respondToWebhook": (1.5, frozenset({1, 1.1, 1.2, 1.3, 1.4, 1.5})),
    "n8n-nodes-base.scheduleTrigger": (1.4, frozenset({1, 1.1, 1.2, 1.3, 1.4})),
    "n8n-nodes-base.stripeTrigger": (1, frozenset({1})),
    "n8n-nodes-base.hubspotTrigger": (1, frozenset({1})),
    "n8n-nodes-base.stickyNote": (1, frozenset({1})),
    "n8n-nodes-base.httpRequest": (4.5, frozenset({3, 4, 4.1, 4.2, 4.3, 4.4, 4.5})),
    "n8n-nodes-base.set": (3.5, frozenset({3, 3.1, 3.2, 3.3, 3.4, 3.5})),
    "n8n-nodes-base.if": (2.3, frozenset({2, 2.1, 2.2, 2.3})),
    "n8n-nodes-base.filter": (2.3, frozenset({2, 2.1, 2.2, 2.3})),
    "n8n-nodes-base.aggregate": (1, frozenset({1})),
    "n8n-nodes-base.splitOut": (1, frozenset({1})),
    "n8n-nodes-base.noOp": (1, frozenset({1})),
    "n8n-nodes-base.convertToFile": (1.1, frozenset({1, 1.1})),
    "n8n-nodes-base.emailSend": (2.1, frozenset({2, 2.1})),
    "n8n-nodes-base.hubspot": (2.2, frozenset({2, 2.1, 2.2})),
    "n8n-nodes-base.googleSheets": (4.7, frozenset({3, 4, 4.1, 4.2, 4.3, 4.4, 4.5, 4.6, 4.7})),
    MEMRELAY_NODE: (1, frozenset({1})),
    MEMRELAY_TRIGGER: (1, frozenset({1})),
}
TRIGGERS = frozenset({"n8n-nodes-base.manualTrigger", "n8n-nodes-base.webhook", "n8n-nodes-base.scheduleTrigger",
                      "n8n-nodes-base.stripeTrigger", "n8n-nodes-base.hubspotTrigger", MEMRELAY_TRIGGER})
CREDENTIAL_TYPES = frozenset({"memrelayApi", "httpHeaderAuth", "smtp", "hubspotAppToken", "hubspotDeveloperApi",
                              "stripeApi", "googleSheetsOAuth2Api"})
NOTE = "n8n-nodes-base.stickyNote"


class InvalidTemplate(ValueError):
    """A rendered document n8n would not run."""


def validate(doc: dict[str, Any]) -> None:
    """Structural checks import does not do: known node types/versions, unique names and ids, one trigger,
    connections between existing nodes, ``{{``-balanced expressions, v1 execution order."""
    name = doc.get("name") or "<unnamed>"
    problems: list[str] = []
    nodes = doc.get("nodes") or []
    names = [n.get("name") for n in nodes]
    ids = [n.get("id") for n in nodes]
    if len(set(names)) != len(names):
        problems.append("node names are not unique")
    if len(set(ids)) != len(ids):
        problems.append("node ids are not unique")
    for n in nodes:
        known = NODE_TYPES.get(n.get("type", ""))
        if known is None:
            problems.append(f"node {n.get('name')!r} has unknown type {n.get('type')!r}")
        elif n.get("typeVersion") not in known[1]:
            problems.append(f"node {n.get('name')!r}: {n['type']} has no typeVersion {n.get('typeVersion')}")
        pos = n.get("position")
        if not (isinstance(pos, list) and len(pos) == 2):
            problems.append(f"node {n.get('name')!r} has no [x, y] position")
        for ctype in (n.get("credentials") or {}):
            if ctype not in CREDENTIAL_TYPES:
                problems.append(f"node {n.get('name')!r} uses unknown credential type {ctype!r}")
        _check_expressions(n.get("parameters") or {}, f"node {n.get('name')!r}", problems)
    if sum(1 for n in nodes if n.get("type") in TRIGGERS) != 1:
        problems.append("a template needs exactly one trigger node")
    for src, outputs in (doc.get("connections") or {}).items():
        if src not in names:
            problems.append(f"connection from unknown node {src!r}")
        for branch in outputs.get("main", []):
            for link in branch or []:
                if link.get("node") not in names:
                    problems.append(f"connection from {src!r} to unknown node {link.get('node')!r}")
    targets = {link["node"] for o in (doc.get("connections") or {}).values() for b in o.get("main", [])
               for link in b or []}
    for n in nodes:
        if n.get("type") not in TRIGGERS | {NOTE} and n.get("name") not in targets:
            problems.append(f"node {n.get('name')!r} is not connected to anything")
        outs = ((doc.get("connections") or {}).get(n.get("name"), {}).get("main") or [])
        wanted = [0, 1] if n.get("type") == "n8n-nodes-base.if" else [1] if n.get("onError") == \
            "continueErrorOutput" else []
        if any(i >= len(outs) or not outs[i] for i in wanted):
            problems.append(f"node {n.get('name')!r} has an output leading nowhere (a dead branch)")
    if any(n.get("type") == "n8n-nodes-base.webhook" and (n.get("parameters") or {}).get("authentication", "none")
           == "none" for n in nodes):
        problems.append("a webhook trigger must authenticate its caller")
    if (doc.get("settings") or {}).get("executionOrder") != "v1":
        problems.append("settings.executionOrder must be 'v1'")
    if problems:
        raise InvalidTemplate(f"{name}: " + "; ".join(problems))


def _check_expressions(value: Any, where: str, problems: list[str]) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _check_expressions(v, where, problems)
    elif isinstance(value, list):
        for v in value:
            _check_expressions(v, where, problems)
    elif isinstance(value, str) and value.startswith("="):
        if value.count("{{") != value.count("}}"):
            problems.append(f"{where} has an unbalanced expression: {value[:80]!r}")
