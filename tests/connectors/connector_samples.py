"""Shared sample payloads for the connector tests (the Typeform and Webflow bodies are the packages' fixtures).

Neither Typeform nor Webflow publishes a test vector with secret, body and signature together, so the
expected signatures below were computed independently with the OpenSSL CLI from each provider's
documented algorithm, e.g. ``printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64``
(Typeform) and ``printf '%s' "$TS:$BODY" | openssl dgst -sha256 -hmac "$SECRET"`` (Webflow).
"""

from __future__ import annotations

from memrelay.connectors.registry import connector_info


def fixture_bytes(connector: str, name: str) -> bytes:
    """A payload fixture of a connector package (``connectors/<package>/fixtures/<name>``)."""
    return (connector_info(connector).package_dir / "fixtures" / name).read_bytes()

ORG_ID = "00D5g000004ABCDEAA"


def notification(notification_id: str, sobject_type: str, fields: str) -> str:
    return f"""
   <Notification>
    <Id>{notification_id}</Id>
    <sObject xsi:type="sf:{sobject_type}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     {fields}
    </sObject>
   </Notification>"""


def envelope(*notifications: str, org_id: str = ORG_ID) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org_id}</OrganizationId>
   <ActionId>04k5g000000AbCdAAK</ActionId>
   <SessionId>00D5g!SECRET-SESSION</SessionId>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/58.0/00D5g000004ABCD</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/58.0/00D5g000004ABCD</PartnerUrl>
   {"".join(notifications)}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>""".encode()


# -- Typeform ---

TYPEFORM_SECRET = "tf_s3cret_for_tests"
TYPEFORM_BODY = fixture_bytes("typeform", "form_response.json")  # connectors/typeform/fixtures
TYPEFORM_SIGNATURE = "sha256=7UrTUg1ffbKxvIl64swISbtwuq+yPNhYUKLuKN952zc="

# -- Webflow ---

WEBFLOW_SECRET = "wf_client_secret_for_tests"
WEBFLOW_TS = "1663849649733"
WEBFLOW_NOW = 1663849649.733 + 30
WEBFLOW_BODY = fixture_bytes("webflow", "form_submission.json")  # connectors/webflow/fixtures
WEBFLOW_SIGNATURE = "1af91d479b745a4d432fc961b86125a7094658a34fe4a5cf8451f9e35145f250"
