"""Salesforce Outbound Messages (SOAP 1.1 ``notifications``) and their required ACK reply.

Outbound Messages carry no HMAC. ``verify`` therefore checks two things, both required:

1. the per-source path token: the gateway passes the token from the webhook URL as ``token=`` (for
   example ``/webhooks/salesforce/<source_id>/<token>``); an ``X-Memrelay-Token`` header is accepted as
   a fallback. Compared in constant time with ``source.token``.
2. ``OrganizationId`` in the body is in ``source.allowed_org_ids`` (15- and 18-character ids match).

The session id Salesforce may include is dropped and never stored.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

from memrelay.connectors.base import (
    AckResponse,
    BaseConnector,
    InboundEvent,
    SourceConfig,
    Verified,
    check_batch_size,
)
from memrelay.connectors.safexml import parse_xml
from memrelay.connectors.signing import provided_token, verify_token
from memrelay.connectors.timeutil import parse_datetime, utcnow
from memrelay.engine.core.errors import BadRequest, SignatureError

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

ACK_BODY = (
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>'
    b"</notificationsResponse></soapenv:Body></soapenv:Envelope>"
)
ACK_CONTENT_TYPE = "text/xml"

# Salesforce sObject -> memrelay entity kind; anything else is lower-cased.
OBJECT_TYPES = {
    "Contact": "contact",
    "Lead": "contact",
    "Account": "company",
    "Opportunity": "deal",
    "Case": "ticket",
}
TIMESTAMP_FIELDS = ("LastModifiedDate", "SystemModstamp", "CreatedDate")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(parent: ET.Element, name: str) -> str | None:
    node = parent.find(f"{{{OUTBOUND_NS}}}{name}")
    if node is None or node.text is None:
        return None
    return node.text.strip() or None


def _field_value(node: ET.Element) -> Any:
    if node.get(f"{{{XSI_NS}}}nil") == "true":
        return None
    children = list(node)
    if children:  # compound value
        return {_local(child.tag): _field_value(child) for child in children}
    return node.text if node.text is not None else ""


def same_org(org_id: str, allowed: str) -> bool:
    """Salesforce ids are case-sensitive; the 18-character form adds a 3-character suffix to the 15."""
    return len(org_id) >= 15 and org_id[:15] == allowed.strip()[:15]


class OutboundMessage:
    """A parsed ``notifications`` element."""

    def __init__(self, raw_body: bytes):
        root = parse_xml(raw_body)
        notifications = root if root.tag == f"{{{OUTBOUND_NS}}}notifications" else None
        if notifications is None:
            body = root.find(f"{{{SOAP_NS}}}Body") if root.tag == f"{{{SOAP_NS}}}Envelope" else None
            notifications = body.find(f"{{{OUTBOUND_NS}}}notifications") if body is not None else None
        if notifications is None:
            raise BadRequest("not a Salesforce outbound message (no notifications element)")
        self.organization_id = _child_text(notifications, "OrganizationId")
        self.action_id = _child_text(notifications, "ActionId")
        self.enterprise_url = _child_text(notifications, "EnterpriseUrl")
        self.partner_url = _child_text(notifications, "PartnerUrl")
        if not self.organization_id:
            raise BadRequest("outbound message has no OrganizationId")
        self.notifications = notifications.findall(f"{{{OUTBOUND_NS}}}Notification")
        check_batch_size(len(self.notifications))


class SalesforceConnector(BaseConnector):
    name = "salesforce"

    def verify(
        self,
        headers: Mapping[str, str],
        raw_body: bytes,
        *,
        source: SourceConfig,
        method: str = "POST",
        url: str = "",
        token: str | None = None,
        now: float | None = None,
    ) -> Verified:
        verify_token(source.token, provided_token(headers, token))
        if not source.allowed_org_ids:
            raise SignatureError("no allowed Salesforce organization ids are configured for this source")
        message = OutboundMessage(raw_body)
        org_id = message.organization_id or ""
        if not any(same_org(org_id, allowed) for allowed in source.allowed_org_ids):
            raise SignatureError("OrganizationId is not allowed for this source")
        return self.verified(source, raw_body, headers, payload=message)

    def parse(self, verified: Verified) -> list[InboundEvent]:
        """One event per ``Notification`` of the message ``verify`` already decoded."""
        source = self.opened(verified).source
        message = verified.payload if isinstance(verified.payload, OutboundMessage) else OutboundMessage(verified.body)
        return [
            self._parse_one(index, node, message, source) for index, node in enumerate(message.notifications)
        ]

    def _parse_one(
        self, index: int, node: ET.Element, message: OutboundMessage, source: SourceConfig
    ) -> InboundEvent:
        notification_id = _child_text(node, "Id")
        sobject = node.find(f"{{{OUTBOUND_NS}}}sObject")
        if not notification_id or sobject is None:
            raise BadRequest(f"notification {index} has no Id or sObject", details={"index": index})
        xsi_type = sobject.get(f"{{{XSI_NS}}}type") or ""
        sobject_type = xsi_type.rsplit(":", 1)[-1]
        if not sobject_type:
            raise BadRequest(f"notification {index} sObject has no xsi:type", details={"index": index})
        fields = {_local(child.tag): _field_value(child) for child in sobject}
        occurred_at = next(
            (ts for ts in (parse_datetime(fields.get(name)) for name in TIMESTAMP_FIELDS) if ts is not None),
            None,
        )
        object_type = OBJECT_TYPES.get(sobject_type, sobject_type.lower())
        payload = {
            "OrganizationId": message.organization_id,
            "ActionId": message.action_id,
            "NotificationId": notification_id,
            "sObjectType": sobject_type,
            "fields": fields,
        }
        return self.new_event(
            source,
            dedup_key=f"salesforce:{message.organization_id}:{notification_id}",
            event_type=f"{object_type}.upsert",
            object_type=object_type,
            source_object_type=sobject_type,
            object_id=fields.get("Id") or None,
            occurred_at=occurred_at or utcnow(),
            payload=payload,
            record=dict(fields),
            attributes={
                "organization_id": message.organization_id,
                "action_id": message.action_id,
                "notification_id": notification_id,
                "timestamp_from_provider": occurred_at is not None,
            },
        )

    def fetch(self, source: SourceConfig, events: Sequence[InboundEvent]) -> dict[str, dict[str, Any]]:
        """Current values of the mapped fields by record Id via the REST API; ``{}`` without
        ``instance_url``/``access_token``. See :mod:`memrelay.connectors.salesforce.api`."""
        from memrelay.connectors.salesforce.api import fetch_records

        return fetch_records(source, events)

    def ack_response(self, events: Sequence[InboundEvent]) -> AckResponse:
        """Salesforce retries until it gets exactly this SOAP ACK (HTTP 200, text/xml)."""
        return ACK_BODY, ACK_CONTENT_TYPE
