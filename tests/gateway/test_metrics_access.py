"""``/metrics`` is the operator's: a bearer ``MEMRELAY_METRICS_TOKEN`` when set, otherwise direct loopback callers
only; org API keys (admin ones included) never open it; its labels carry route templates, never ids or tokens."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from memrelay.composition import Services
from memrelay.engine.core.settings import Settings
from memrelay.gateway.app import create_app
from tests.conftest import make_api

REMOTE = {"REMOTE_ADDR": "203.0.113.9"}


def test_without_a_token_only_direct_loopback_callers_scrape(app: Any, engine: Services) -> None:
    admin = make_api(app, engine)
    client = app.test_client()
    ok = client.get("/metrics")  # the test client calls from 127.0.0.1
    assert ok.status_code == 200 and b"memrelay_http_requests_total" in ok.data
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    assert client.get("/metrics", environ_base=REMOTE).status_code == 403
    relayed = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})  # a local proxy relaying
    assert relayed.status_code == 403 and relayed.json["error"]["code"] == "forbidden"
    assert client.get("/metrics", headers={"Forwarded": "for=203.0.113.9"}).status_code == 403
    as_org = client.get("/metrics", environ_base=REMOTE, headers={"Authorization": f"Bearer {admin.key}"})
    assert as_org.status_code == 403  # an org's admin key is not the operator's


def test_with_a_token_prometheus_scrapes_with_its_bearer(settings: Settings, engine: Services) -> None:
    app = create_app(settings.model_copy(update={"metrics_token": SecretStr("scrape-token-123")}), services=engine)
    admin = make_api(app, engine)
    client = app.test_client()
    assert client.get("/metrics").status_code == 401  # loopback alone is not enough once a token is set
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {admin.key}"}).status_code == 401
    ok = client.get("/metrics", environ_base=REMOTE, headers={"Authorization": "Bearer scrape-token-123"})
    assert ok.status_code == 200 and ok.content_type.startswith("text/plain")


def test_metric_labels_carry_no_ids_tokens_or_orgs(app: Any, engine: Services) -> None:
    api = make_api(app, engine)
    source = api.post("/api/v1/sources", json={"connector": "form", "name": "labels"}).json["data"]
    client = app.test_client()
    client.post(f"/webhooks/form/{source['id']}/tok-label-secret", data={"email": "x@example.com"})
    client.post("/webhooks/form/src_made_up_id_42", data={"email": "x@example.com"})
    api.delete("/api/v1/keys/key_label_probe")
    client.get("/no/such/path/secret-path-segment")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'route="/api/v1/keys/<key_id>"' in text and 'route="unmatched"' in text
    for secret in (source["id"], "tok-label-secret", "src_made_up_id_42", "key_label_probe", api.org_id,
                   "secret-path-segment", api.key):
        assert secret not in text, secret
