"""Render a memrelay workflow definition as an n8n workflow: the trigger becomes an n8n trigger node, each
step one or two nodes calling the matching memrelay endpoint, in dependency order.

Differences from memrelay's own runner: the chain is linear (a false condition stops every later node),
and ``foreach`` becomes a Split Out node after the first step. A step that calls memrelay answers in
Personize's envelope ``{"success": true, "data": ...}``, so ``steps.<id>.x`` reads ``json.data.x`` there."""

from __future__ import annotations

from typing import Any

from memrelay.workflows.expressions import js_string, template_to_js, value_to_js
from memrelay.workflows.models import (
    BatchMemorizeStep,
    ConditionStep,
    DeliverStep,
    DigestStep,
    EnrichStep,
    GenerateStep,
    ManualTrigger,
    MemorizeStep,
    RecallStep,
    ScheduleTrigger,
    SignalsStep,
    Step,
    WebhookTrigger,
    WorkflowDef,
)
from memrelay.workflows.n8n.document import SMTP_CREDENTIAL, Doc, stable_id

EACH_ITEM = "Each item"
MEMRELAY_CALLS = (MemorizeStep, BatchMemorizeStep, EnrichStep, RecallStep, DigestStep, SignalsStep, GenerateStep)
"""Steps rendered as HTTP calls to memrelay (their output is an enveloped answer)."""


class _Renderer:
    def __init__(self, wf: WorkflowDef):
        self.wf = wf
        self.doc = Doc(key=f"workflow/{wf.id}", name=f"memrelay: {wf.name}")
        self.trigger_node = ""
        self.step_nodes: dict[str, str] = {}
        self.per_item: set[str] = set()
        self.enveloped = {s.id for s in wf.steps if isinstance(s, MEMRELAY_CALLS)}
        self.env_names = sorted({s.url[4:] for s in wf.steps if isinstance(s, DeliverStep) and s.url
                                 and s.url.startswith("env:")})
        self.doc.config = {n: "" for n in self.env_names}
        if any(isinstance(s, DeliverStep) and s.via == "email" for s in wf.steps):
            self.doc.config["emailFrom"] = "memrelay@example.com"

    # --- expressions -----------------------------------------------------------------------------
    def resolve(self, name: str, path: list[str]) -> str | None:
        payload = self._payload()
        if name in ("trigger", "input") and not path:
            return f"({{ \"payload\": {payload} }})" if name == "trigger" else payload
        if name == "trigger" and path == ["payload"]:
            return payload
        if name == "steps" and len(path) == 1 and path[0] in self.step_nodes:
            node = self.step_nodes[path[0]]
            data = ".data" if path[0] in self.enveloped else ""
            return f"$('{node}').{'item' if path[0] in self.per_item else 'first()'}.json{data}"
        if name == "item" and not path:
            return f"$('{EACH_ITEM}').item.json"
        return None

    def _payload(self) -> str:
        if isinstance(self.wf.trigger, WebhookTrigger):
            return f"$('{self.trigger_node}').first().json.body"
        return "$('Config').first().json"

    def js(self, value: Any) -> str:
        return value_to_js(value, self.resolve)

    def expr(self, template: str) -> str:
        return "={{ " + template_to_js(template, self.resolve) + " }}"

    # --- document --------------------------------------------------------------------------------
    def render(self) -> dict[str, Any]:
        self.trigger_node = self._trigger()
        self.doc.add_config()
        order = self.wf.order()
        for i, step in enumerate(order):
            if i and self.wf.foreach and i == 1:
                self._split_items()
            if self.wf.foreach and i:
                self.per_item.add(step.id)
            self.step_nodes[step.id] = self._step(step)
        return self.doc.document(self.wf.description)

    def _trigger(self) -> str:
        trig = self.wf.trigger
        if isinstance(trig, WebhookTrigger):
            return self.doc.add("Webhook", "n8n-nodes-base.webhook",
                                {"httpMethod": "POST", "path": trig.path or self.wf.id, "responseMode": "lastNode",
                                 "options": {}}, extra={"webhookId": stable_id(self.doc.key, "webhook")})
        if isinstance(trig, ScheduleTrigger):
            rule: dict[str, str | int]
            if trig.cron:
                rule = {"field": "cronExpression", "expression": trig.cron}
            else:
                from memrelay.workflows.cron import parse_interval

                rule = {"field": "minutes", "minutesInterval": max(1, parse_interval(trig.every or "60m") // 60)}
            return self.doc.add("Schedule", "n8n-nodes-base.scheduleTrigger", {"rule": {"interval": [rule]}})
        assert isinstance(trig, ManualTrigger)
        self.doc.config.update({k: str(v) for k, v in trig.inputs.items()})
        return self.doc.add("Manual trigger", "n8n-nodes-base.manualTrigger", {})

    def _split_items(self) -> None:
        first = self.wf.order()[0]
        field = self.wf.foreach.strip().removeprefix("{{").removesuffix("}}").strip() if self.wf.foreach else ""
        prefix = f"steps.{first.id}."
        if not field.startswith(prefix):
            raise ValueError(f"{self.wf.id}: foreach must name a field of the first step for n8n rendering")
        data = "data." if first.id in self.enveloped else ""
        self.doc.add(EACH_ITEM, "n8n-nodes-base.splitOut",
                     {"fieldToSplitOut": data + field[len(prefix):], "options": {}})

    def _step(self, step: Step) -> str:  # noqa: PLR0911 - one branch per step type
        d, title = self.doc, step.title
        if isinstance(step, MemorizeStep):
            body = {"content": step.content, "identifiers": step.identifiers, "tags": step.tags,
                    "enhanced": step.enhanced, "source": "n8n"}
            return d.api(title, "POST", "/api/v1/memorize", self.js(body))
        if isinstance(step, BatchMemorizeStep):
            rows = step.rows if "{{" in step.rows else "{{ " + step.rows + " }}"
            body_js = "{ " + f"\"rows\": {template_to_js(rows, self.resolve)}, \"mapping\": {self.js(step.mapping)}, " \
                      f"\"tags\": {self.js(step.tags)}, \"source\": \"n8n\"" + " }"
            return d.api(title, "POST", "/api/v1/batch-memorize", body_js)
        if isinstance(step, EnrichStep):
            node = None
            if step.derive:
                props = f"Object.fromEntries(Object.entries({self.js(step.derive)}).filter(([k, v]) => v != null && v !== ''))"
                body_js = "{ ..." + self.js(step.identifiers) + f", \"properties\": {props}, \"source\": \"n8n\"" + " }"
                node = d.api(title if not step.extract_from else f"{title} (derive)", "POST", "/api/v1/upsert", body_js)
            if step.extract_from:
                body = {"content": step.extract_from, "identifiers": step.identifiers, "tags": ["enrichment"],
                        "source": "n8n"}
                node = d.api(title if not step.derive else f"{title} (extract)", "POST", "/api/v1/memorize",
                             self.js(body))
            assert node is not None
            return node
        if isinstance(step, RecallStep):
            body = {"query": step.query, "identifiers": step.identifiers, "limit": step.limit}
            return d.api(title, "POST", "/api/v1/smart-recall", self.js(body))
        if isinstance(step, DigestStep):
            body = {"identifiers": step.identifiers, "tokenBudget": step.token_budget}
            return d.api(title, "POST", "/api/v1/smart-memory-digest", self.js(body))
        if isinstance(step, SignalsStep):
            return d.api(title, "GET", "/api/v1/signals", query={
                "tag": step.tag, "sinceHours": str(step.since_hours), "type": step.entity_type,
                "limit": str(step.limit)})
        if isinstance(step, GenerateStep):
            return d.api(title, "POST", "/api/v1/prompt", self._prompt_body(step))
        if isinstance(step, DeliverStep):
            return self._deliver(step)
        assert isinstance(step, ConditionStep)
        cond = step.if_.strip()
        left = self.expr(cond if cond.startswith("{{") else "{{ " + cond + " }}")
        return d.add(title, "n8n-nodes-base.if", {
            "conditions": {"options": {"caseSensitive": True, "leftValue": "", "typeValidation": "loose",
                                       "version": 2},
                           "conditions": [{"id": stable_id(d.key, step.id, "condition"), "leftValue": left,
                                           "rightValue": "", "operator": {"type": "boolean", "operation": "true",
                                                                          "singleValue": True}}],
                           "combinator": "and"},
            "looseTypeValidation": True, "options": {}})

    def _prompt_body(self, step: GenerateStep) -> str:
        body: dict[str, Any] = {"instructions": [{"prompt": p} for p in step.instructions],
                                "outputs": [{"name": o} for o in step.outputs]}
        if step.channel:
            body["channel"] = step.channel
        if step.identifiers:
            body["identifiers"] = step.identifiers
            if step.memorize_back:
                body["memorize"] = step.identifiers
        if step.context:
            body["context"] = step.context
        return self.js(body)

    def _deliver(self, step: DeliverStep) -> str:
        d = self.doc
        if step.via == "email":
            return d.add(step.title, "n8n-nodes-base.emailSend", {
                "fromEmail": f"={{{{ {d.config_ref('emailFrom')} }}}}", "toEmail": self.expr(step.to or ""),
                "subject": self.expr(step.subject or ""), "emailFormat": "text", "text": self.expr(step.text),
                "options": {}}, credentials={"smtp": dict(SMTP_CREDENTIAL)})
        url = step.url or ""
        url_js = d.config_ref(url[4:]) if url.startswith("env:") else template_to_js(url, self.resolve)
        body: dict[str, Any] = {"text": step.text}
        if step.via == "webhook":
            body.update(step.payload or {})
        return d.post_json(step.title, url_js, self.js(body))


def render_workflow(wf: WorkflowDef) -> dict[str, Any]:
    return _Renderer(wf).render()


__all__ = ["js_string", "render_workflow"]
