"""Building n8n workflow documents: deterministic ids (uuid5) and positions, a Config node holding the
memrelay base URL, and HTTP Request nodes calling the memrelay REST API with a Header Auth credential."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from memrelay.workflows.expressions import js_string
from memrelay.workflows.n8n.nodes import NODE_TYPES

NAMESPACE = uuid.UUID("6f1d4f0e-8a7b-5c55-9a3e-6d656d72656c")  # fixed: ids stay stable across builds
API_CREDENTIAL = {"id": "memrelayApiKey01", "name": "memrelay API key"}
SMTP_CREDENTIAL = {"id": "memrelaySmtp0001", "name": "memrelay SMTP"}
CONFIG = "Config"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
X_STEP, Y = 220, 300


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


@dataclass
class Doc:
    """An n8n workflow under construction; nodes are chained in the order they are added unless told."""

    key: str
    name: str
    nodes: list[dict[str, Any]] = field(default_factory=list)
    connections: dict[str, dict[str, list[list[dict[str, Any]]]]] = field(default_factory=dict)
    config: dict[str, str] = field(default_factory=dict)

    def unique_name(self, name: str) -> str:
        taken = {n["name"] for n in self.nodes}
        out, i = name, 2
        while out in taken:
            out, i = f"{name} {i}", i + 1
        return out

    def add(self, name: str, node_type: str, parameters: dict[str, Any], *, after: str | None = None,
            output: int = 0, credentials: dict[str, Any] | None = None, row: int = 0,
            extra: dict[str, Any] | None = None) -> str:
        """Add a node and connect ``after`` (default: the previous node) → it."""
        name = self.unique_name(name)
        prev = after if after is not None else (self.nodes[-1]["name"] if self.nodes else None)
        node: dict[str, Any] = {"parameters": parameters, "id": stable_id(self.key, name), "name": name,
                                "type": node_type, "typeVersion": NODE_TYPES[node_type][0],
                                "position": [X_STEP * len(self.nodes), Y + 200 * row]}
        if credentials:
            node["credentials"] = credentials
        node.update(extra or {})
        self.nodes.append(node)
        if prev is not None:
            self.connect(prev, name, output)
        return name

    def connect(self, src: str, dst: str, output: int = 0) -> None:
        outs = self.connections.setdefault(src, {"main": []})["main"]
        while len(outs) <= output:
            outs.append([])
        outs[output].append({"node": dst, "type": "main", "index": 0})

    def add_config(self) -> str:
        """The one place a user edits: memrelay's base URL and any other settings the template needs."""
        assignments = [{"id": stable_id(self.key, "config", k), "name": k, "value": v, "type": "string"}
                       for k, v in {"memrelayBaseUrl": DEFAULT_BASE_URL, **self.config}.items()]
        return self.add(CONFIG, "n8n-nodes-base.set", {"mode": "manual", "assignments": {"assignments": assignments},
                                                      "includeOtherFields": True, "options": {}})

    def config_ref(self, key: str) -> str:
        return f"$('{CONFIG}').first().json[{js_string(key)}]"

    def api(self, name: str, method: str, path: str, body_js: str | None = None, *,
            query: dict[str, str] | None = None, after: str | None = None) -> str:
        """An HTTP Request node calling ``<base URL><path>`` with the memrelay API key credential."""
        params: dict[str, Any] = {"method": method, "url": f"={{{{ {self.config_ref('memrelayBaseUrl')} }}}}{path}",
                                  "authentication": "genericCredentialType", "genericAuthType": "httpHeaderAuth"}
        if query:
            params["sendQuery"] = True
            params["queryParameters"] = {"parameters": [{"name": k, "value": v} for k, v in query.items()]}
        if body_js is not None:
            params.update(sendBody=True, specifyBody="json", jsonBody=f"={{{{ JSON.stringify({body_js}) }}}}")
        params["options"] = {}
        return self.add(name, "n8n-nodes-base.httpRequest", params, after=after,
                        credentials={"httpHeaderAuth": dict(API_CREDENTIAL)})

    def post_json(self, name: str, url_js: str, body_js: str, *, after: str | None = None) -> str:
        """An HTTP Request node POSTing JSON to an external URL (Slack incoming webhook, any webhook)."""
        params = {"method": "POST", "url": f"={{{{ {url_js} }}}}", "sendBody": True, "specifyBody": "json",
                  "jsonBody": f"={{{{ JSON.stringify({body_js}) }}}}", "options": {}}
        return self.add(name, "n8n-nodes-base.httpRequest", params, after=after)

    def document(self, description: str = "") -> dict[str, Any]:
        return {"id": stable_id(self.key).replace("-", "")[:16], "name": self.name, "nodes": self.nodes,
                "connections": self.connections, "active": False, "settings": {"executionOrder": "v1"},
                "pinData": {}, "meta": {"templateCredsSetupCompleted": False, "memrelayTemplate": self.key,
                                        "description": description}, "tags": []}


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
