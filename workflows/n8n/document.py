"""Building n8n workflow documents on the memrelay node pack (n8n-nodes-memrelay): deterministic ids (uuid5),
explicit grid positions, sticky notes, memrelay nodes with retries and an error output, and Respond to Webhook
nodes so every branch of a webhook template answers its caller deliberately."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from memrelay.workflows.n8n.nodes import MEMRELAY_NODE, NODE_TYPES

NAMESPACE = uuid.UUID("6f1d4f0e-8a7b-5c55-9a3e-6d656d72656c")  # fixed: ids stay stable across builds
API_CREDENTIAL = {"id": "memrelayApi00001", "name": "memrelay account"}
HOOK_CREDENTIAL = {"id": "memrelayHook0001", "name": "memrelay webhook header"}
SMTP_CREDENTIAL = {"id": "memrelaySmtp0001", "name": "memrelay SMTP"}
SETTINGS = "Settings"
X_STEP, Y_STEP = 240, 200
RETRY = {"retryOnFail": True, "maxTries": 3, "waitBetweenTries": 2000}


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


@dataclass
class Doc:
    """An n8n workflow under construction; a node is connected from ``after`` (default: the previous one)."""

    key: str
    name: str
    nodes: list[dict[str, Any]] = field(default_factory=list)
    connections: dict[str, dict[str, list[list[dict[str, Any]]]]] = field(default_factory=dict)
    notes: int = 0

    def add(self, name: str, node_type: str, parameters: dict[str, Any], *, after: str | None = None,
            output: int = 0, at: tuple[int, int] | None = None, credentials: dict[str, Any] | None = None,
            extra: dict[str, Any] | None = None) -> str:
        if any(n["name"] == name for n in self.nodes):
            raise ValueError(f"{self.key}: node name {name!r} used twice")
        flow = [n for n in self.nodes if n["type"] != "n8n-nodes-base.stickyNote"]
        prev = after if after is not None else (flow[-1]["name"] if flow else None)
        col, row = at if at is not None else (len(flow), 0)
        node: dict[str, Any] = {"parameters": parameters, "id": stable_id(self.key, name), "name": name,
                                "type": node_type, "typeVersion": NODE_TYPES[node_type][0],
                                "position": [X_STEP * col, Y_STEP * row]}
        if credentials:
            node["credentials"] = credentials
        node.update(extra or {})
        self.nodes.append(node)
        if prev is not None and prev != "":
            self.connect(prev, name, output)
        return name

    def connect(self, src: str, dst: str, output: int = 0) -> None:
        outs = self.connections.setdefault(src, {"main": []})["main"]
        while len(outs) <= output:
            outs.append([])
        outs[output].append({"node": dst, "type": "main", "index": 0})

    def sticky(self, content: str, *, at: tuple[int, int], width: int = 420, height: int = 300,
               color: int = 7) -> None:
        """A sticky note (markdown) explaining setup; ``at`` is its top-left grid cell."""
        self.notes += 1
        name = f"Note {self.notes}"
        self.nodes.append({"parameters": {"content": content, "height": height, "width": width, "color": color},
                           "id": stable_id(self.key, name), "name": name, "type": "n8n-nodes-base.stickyNote",
                           "typeVersion": 1, "position": [X_STEP * at[0], Y_STEP * at[1] - 60]})

    def settings(self, values: dict[str, str], *, after: str | None = None, at: tuple[int, int] | None = None) -> str:
        """The one node a user edits besides credentials: addresses, URLs, the record type to export."""
        assignments = [{"id": stable_id(self.key, "settings", k), "name": k, "value": v, "type": "string"}
                       for k, v in values.items()]
        return self.add(SETTINGS, "n8n-nodes-base.set", {
            "mode": "manual", "assignments": {"assignments": assignments}, "includeOtherFields": True,
            "options": {}}, after=after, at=at)

    def setting(self, key: str) -> str:
        return f"$('{SETTINGS}').first().json.{key}"

    def memrelay(self, name: str, resource: str, operation: str, parameters: dict[str, Any], *,
                 after: str | None = None, output: int = 0, at: tuple[int, int] | None = None,
                 error_output: bool = True) -> str:
        """A memrelay node (retried 3×); with ``error_output`` its failures leave by a second output that
        the template wires to a deliberate answer, otherwise the run stops and n8n records the error."""
        extra = {**RETRY, "onError": "continueErrorOutput" if error_output else "stopWorkflow"}
        return self.add(name, MEMRELAY_NODE, {"resource": resource, "operation": operation, **parameters},
                        after=after, output=output, at=at, credentials={"memrelayApi": dict(API_CREDENTIAL)},
                        extra=extra)

    def respond(self, name: str, status: int, body: str, *, after: str, output: int = 0,
                at: tuple[int, int] | None = None) -> str:
        """Answer the webhook caller: ``body`` is an n8n expression producing the JSON body."""
        return self.add(name, "n8n-nodes-base.respondToWebhook", {
            "respondWith": "json", "responseBody": body, "options": {"responseCode": status}},
            after=after, output=output, at=at)

    def webhook(self, path: str, *, at: tuple[int, int] = (0, 0)) -> str:
        """A POST webhook that needs the shared header credential and answers through Respond nodes."""
        return self.add("Webhook", "n8n-nodes-base.webhook", {
            "httpMethod": "POST", "path": path, "authentication": "headerAuth", "responseMode": "responseNode",
            "options": {}}, at=at, credentials={"httpHeaderAuth": dict(HOOK_CREDENTIAL)},
            extra={"webhookId": stable_id(self.key, "webhook")})

    def checks(self, name: str, conditions: list[tuple[str, str]], *, after: str | None = None,
               at: tuple[int, int] | None = None) -> str:
        """An IF node: every ``(left expression, operation)`` must hold (string operations such as
        ``notEmpty``, ``regex``)."""
        items = []
        for i, (left, operation) in enumerate(conditions):
            cond: dict[str, Any] = {"id": stable_id(self.key, name, str(i)), "leftValue": left, "rightValue": "",
                                    "operator": {"type": "string", "operation": operation}}
            if operation == "regex":
                cond["rightValue"] = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
            else:
                cond["operator"]["singleValue"] = True
            items.append(cond)
        return self.add(name, "n8n-nodes-base.if", {
            "conditions": {"options": {"caseSensitive": True, "leftValue": "", "typeValidation": "loose",
                                       "version": 2},
                           "conditions": items, "combinator": "and"},
            "looseTypeValidation": True, "options": {}}, after=after, at=at)

    def document(self, description: str) -> dict[str, Any]:
        return {"id": stable_id(self.key).replace("-", "")[:16], "name": self.name, "nodes": self.nodes,
                "connections": self.connections, "active": False, "settings": {"executionOrder": "v1"},
                "pinData": {}, "meta": {"templateCredsSetupCompleted": False, "memrelayTemplate": self.key,
                                        "description": description}, "tags": []}


def error_body(node: str) -> str:
    """The JSON answered when a memrelay step failed (its error output item carries ``error``)."""
    return ("={{ { ok: false, step: " + json.dumps(node) + ", error: $json.error?.message ?? $json.error "
            "?? 'memrelay call failed' } }}")


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
