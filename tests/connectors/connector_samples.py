"""Shared sample payloads for the connector tests.

Neither Typeform nor Webflow publishes a test vector with secret, body and signature together, so the
expected signatures below were computed independently with the OpenSSL CLI from each provider's
documented algorithm, e.g. ``printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64``
(Typeform) and ``printf '%s' "$TS:$BODY" | openssl dgst -sha256 -hmac "$SECRET"`` (Webflow).
"""

from __future__ import annotations

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
TYPEFORM_BODY = (
    b'{"event_id":"01HZX7Q2K8","event_type":"form_response","form_response":{"form_id":"lT4Z3j",'
    b'"token":"a3a12ec67a1365927098a606107fac15","submitted_at":"2024-05-01T10:15:30Z","landed_a'
    b't":"2024-05-01T10:10:00Z","calculated":{"score":9},"hidden":{"utm_source":"newsletter"},"d'
    b'efinition":{"id":"lT4Z3j","title":"Book a demo","fields":[]},"answers":[{"type":"text","te'
    b'xt":"Ann","field":{"id":"a1","type":"short_text","ref":"first_name"}},{"type":"email","ema'
    b'il":"Ann.Lee@Acme.com","field":{"id":"a2","type":"email","ref":"work_email"}},{"type":"cho'
    b'ice","choice":{"label":"51-200"},"field":{"id":"a3","type":"multiple_choice","ref":"Compan'
    b'y Size"}},{"type":"choices","choices":{"labels":["Postgres","Redis"]},"field":{"id":"a4","'
    b'type":"multiple_choice","ref":"stack"}},{"type":"number","number":3,"field":{"id":"a5","ty'
    b'pe":"number"}},{"type":"boolean","boolean":true,"field":{"id":"a6","type":"yes_no","ref":"'
    b'newsletter"}},{"type":"text","text":"We are migrating off MySQL this quarter.","field":{"i'
    b'd":"a7","type":"long_text","ref":"message"}}]}}'
)
TYPEFORM_SIGNATURE = "sha256=7UrTUg1ffbKxvIl64swISbtwuq+yPNhYUKLuKN952zc="

# -- Webflow ---

WEBFLOW_SECRET = "wf_client_secret_for_tests"
WEBFLOW_TS = "1663849649733"
WEBFLOW_NOW = 1663849649.733 + 30
WEBFLOW_BODY = (
    b'{"triggerType":"form_submission","payload":{"name":"Contact Us","siteId":"65427cf400e02b30'
    b'6eaa049c","data":{"First Name":"Zaphod","Last Name":"Beeblebrox","email":"zaphod@heartofgo'
    b'ld.ai","Phone Number":15550000000},"submittedAt":"2022-09-14T12:35:16.117Z","id":"6321ca84'
    b'df3949bfc6752327","formId":"65429eadebe8a9f3a30f62d0"}}'
)
WEBFLOW_SIGNATURE = "1af91d479b745a4d432fc961b86125a7094658a34fe4a5cf8451f9e35145f250"
