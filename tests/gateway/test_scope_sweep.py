"""Every /api/v1 and /api/v1.1 route × key scope (none, read, write, admin) answers as the policy below says.

The policy is written out here, independently of the routes' declarations: reads (GET and the documented
query POSTs) need ``read``; anything that changes data needs ``write``; keys, sources, outbound subscriptions
(``/webhooks`` and Zapier ``/hooks``), entity-type changes, workflow switches and erasure need ``admin``.
"""

from __future__ import annotations

import re

from tests.conftest import make_api

LEVELS = ("read", "write", "admin")

READ_POSTS = {
    "/api/v1/search", "/api/v1/recall", "/api/v1/smart-recall", "/api/v1/smart-memory-digest", "/api/v1/similar",
    "/api/v1/segment", "/api/v1/memory/property-history", "/api/v1/memory/filter-by-property",
    "/api/v1/memory/query-properties", "/api/v1/ai/smart-guidelines",
    "/api/v1/searches/find-record", "/api/v1/searches/smart-recall",  # Zapier searches
    "/api/v1.1/memory/digest", "/api/v1.1/memory/filter-by-property", "/api/v1.1/memory/query-properties",
    "/api/v1.1/memory/retrieve", "/api/v1.1/memory/search", "/api/v1.1/memory/segment",
    "/api/v1.1/memory/similar", "/api/v1.1/ai/smart-guidelines",
}
ADMIN = [
    ("*", r"/api/v1/keys(/.*)?"),
    ("POST|PATCH|DELETE", r"/api/v1/sources(/<source_id>)?"),
    ("POST", r"/api/v1/sources/<source_id>/(reveal|rotate-token)"),
    ("POST|PATCH|DELETE|PUT", r"/api/v1/webhooks(/.*)?"),
    ("*", r"/api/v1/hooks(/.*)?"),
    ("PATCH|DELETE", r"/api/v1/entities/<ref>"),
    ("*", r"/api/v1/entity-types/.*"),
    ("POST", r"/api/v1/memory/erase-record"),
    ("POST", r"/api/v1/workflows/<workflow_id>/(enable|disable)"),
]


def expected_scope(method: str, rule: str) -> str:
    for methods, pattern in ADMIN:
        if (methods == "*" or method in methods.split("|")) and re.fullmatch(pattern, rule):
            return "admin"
    if method == "GET" or (method == "POST" and rule in READ_POSTS):
        return "read"
    return "write"


def test_every_route_answers_each_scope_as_the_policy_says(app, engine):
    keys = {scope: make_api(app, engine, scopes=(scope,)) for scope in LEVELS}
    anonymous = app.test_client()
    checked, wrong = 0, []
    for rule in app.url_map.iter_rules():
        if not re.match(r"^/api/v1(\.1)?/", rule.rule):
            continue
        path = re.sub(r"<(?:\w+:)?\w+>", "zz_missing", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            need = expected_scope(method, rule.rule)
            none = anonymous.open(path, method=method, json={})
            if none.status_code != 401:
                wrong.append((method, rule.rule, "no key", none.status_code))
            for scope, api in keys.items():
                resp = api.client.open(path, method=method, json={},
                                       headers={"Authorization": f"Bearer {api.key}"})
                allowed = LEVELS.index(scope) >= LEVELS.index(need)
                assert resp.status_code != 500, (method, rule.rule, scope, resp.get_data(as_text=True)[:300])
                if allowed and resp.status_code in (401, 403):
                    wrong.append((method, rule.rule, f"{scope} refused", resp.status_code))
                if not allowed and resp.status_code != 403:
                    wrong.append((method, rule.rule, f"{scope} allowed", resp.status_code))
                if resp.status_code == 403:
                    assert resp.json["error"]["code"] == "forbidden"
            checked += 1
    assert not wrong, "\n".join(map(str, wrong))
    assert checked > 120
