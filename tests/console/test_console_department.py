"""The operator console shows org-wide resources (events, sources, outbound): a department key signs in to
nothing (403 on every page), an org-wide key of the same org is unaffected."""

from __future__ import annotations

from typing import Any

from memrelay.engine.core.access import AccessScope
from tests.console.test_console import CSRF


def _sign_in(app: Any, key: str) -> Any:
    client = app.test_client()
    page = client.get("/console/login")
    token = CSRF.search(page.get_data(as_text=True)).group(1)
    client.post("/console/login", data={"api_key": key, "csrf_token": token})
    return client


def test_a_department_key_cannot_use_the_console(app: Any, engine: Any) -> None:
    org = engine.tenancy.get_or_create_org("console-department")
    dept, _ = engine.tenancy.create_key(org.id, scopes=["read", "write", "admin"],
                                        access=AccessScope.of(["contact"], None, ["support"]))
    full, _ = engine.tenancy.create_key(org.id, scopes=["read", "write", "admin"])
    refused = _sign_in(app, dept)
    for page in ("/console/events", "/console/records", "/console/guidelines", "/console/sources"):
        assert refused.get(page).status_code == 403, page
    assert _sign_in(app, full).get("/console/events").status_code == 200
