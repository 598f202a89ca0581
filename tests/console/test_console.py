"""The operator console through Flask's test client: sign-in, session cookie, CSRF, scopes and org isolation on
every /console route, and each page's behaviour against the real services (SQLite, private Redis)."""

from __future__ import annotations

import html
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis as redis_lib

from memrelay.queue.connection import queue
from memrelay.worker.jobs.deliver import dispatch_tick
from tests.conftest import Api, make_api

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

# The policy, written out independently of the views: what each console route needs (GET pages, POST actions).
PUBLIC = {"/console/login", "/console/static/<path:filename>"}
ADMIN = {("GET", "/console/usage"), ("POST", "/console/sources"), ("POST", "/console/sources/<source_id>/test"),
         ("POST", "/console/sources/<source_id>/rotate-token"), ("POST", "/console/records/<record_id>/erase"),
         ("POST", "/console/outbound/<sub_id>/deliveries/<delivery_id>/redeliver"),
         ("POST", "/console/outbound/<sub_id>/rotate-secret")}
WRITE = {("POST", "/console/events/replay"), ("POST", "/console/records/<record_id>/delete"),
         ("POST", "/console/records/cancel-deletion"), ("POST", "/console/guidelines"),
         ("POST", "/console/guidelines/<guideline_id>")}


def expected_scope(method: str, rule: str) -> str:
    if (method, rule) in ADMIN:
        return "admin"
    if (method, rule) in WRITE:
        return "write"
    return "read"


class Console:
    """A browser-like test client signed in to the console with one API key."""

    def __init__(self, api: Api):
        self.api, self.client = api, api.client
        self.csrf = ""

    def sign_in(self) -> Any:
        page = self.client.get("/console/login")
        token = CSRF.search(page.get_data(as_text=True)).group(1)
        resp = self.client.post("/console/login", data={"api_key": self.api.key, "csrf_token": token})
        assert resp.status_code == 302, resp.get_data(as_text=True)
        self.refresh()
        return resp

    def refresh(self) -> None:
        self.csrf = CSRF.search(self.client.get("/console/events").get_data(as_text=True)).group(1)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def text(self, path: str, **kw: Any) -> str:
        resp = self.client.get(path, **kw)
        assert resp.status_code == 200, (path, resp.status_code, resp.get_data(as_text=True)[:2000])
        return html.unescape(resp.get_data(as_text=True))

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kw: Any) -> Any:
        body = dict(data or {})
        if csrf:
            body["csrf_token"] = self.csrf
        return self.client.post(path, data=body, **kw)


def console(app: Any, engine: Any, scopes: tuple[str, ...] = ("read", "write", "admin"),
            api: Api | None = None) -> Console:
    c = Console(api or make_api(app, engine, scopes=scopes))
    c.sign_in()
    return c


def routes(app: Any) -> list[tuple[str, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/console") and rule.rule not in PUBLIC:
            out += [(m, rule.rule) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return out


def concrete(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?\w+>", "zz_missing", rule)


def seed_events(api: Api, n: int, *, event_type: str = "contact.upsert") -> tuple[dict[str, Any], list[str]]:
    """``n`` events through the real receiver of a generic source (path token), newest last."""
    src = api.post("/api/v1/sources", json={"connector": "generic", "name": "Zapier"}).json["data"]
    ids = []
    for i in range(n):
        r = api.client.post(src["webhookPath"], json={"event_id": f"e-{i}", "event_type": event_type,
                                                      "object_type": "contact", "email": f"p{i}@example.org",
                                                      "api_key": "sk_live_should_be_masked"})
        assert r.status_code == 202, r.json
        ids += r.json["eventIds"]
    return src, ids


def kill(engine: Any, event_id: str) -> None:
    """Fail an event through its real retry policy until it is a dead letter."""
    while engine.events.get(None, event_id).status != "dead":
        ev = engine.events.claim(event_id)
        engine.events.fail(event_id, "mapping exploded: no key", attempt=ev.attempts)


# --- auth, session, CSRF, scope --------------------------------------------------------------------------
def test_every_route_needs_a_session(app):
    anonymous = app.test_client()
    checked = 0
    for method, rule in routes(app):
        resp = anonymous.open(concrete(rule), method=method, data={})
        if method == "GET":
            assert resp.status_code == 302 and "/console/login" in resp.headers["Location"], (method, rule)
        else:
            assert resp.status_code == 401, (method, rule, resp.status_code)
        checked += 1
    assert checked >= 25


def test_sign_in_sets_a_strict_httponly_session_that_never_holds_the_key(app, engine, settings):
    api = make_api(app, engine)
    c = Console(api)
    login = c.client.get("/console/login")
    assert "HttpOnly" in login.headers["Set-Cookie"] and "SameSite=Strict" in login.headers["Set-Cookie"]
    bad = c.client.post("/console/login", data={"api_key": api.key, "csrf_token": "forged"})
    assert bad.status_code == 403  # the sign-in form's double-submit token
    token = CSRF.search(c.client.get("/console/login").get_data(as_text=True)).group(1)
    wrong = c.client.post("/console/login", data={"api_key": "mr_wrong", "csrf_token": token})
    assert wrong.status_code == 401 and "not valid" in wrong.get_data(as_text=True)
    resp = c.sign_in()
    cookie = next(h for h in resp.headers.getlist("Set-Cookie") if h.startswith("mrc_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    sid = cookie.split(";")[0].split("=", 1)[1]
    assert api.key not in sid
    r = redis_lib.Redis.from_url(settings.redis_url)
    stored = [r.get(k) for k in r.scan_iter("memrelay:console:*")]
    assert stored and not any(api.key.encode() in v or sid.encode() in v for v in stored)
    page = c.get("/console/events")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert c.post("/console/logout").status_code == 302
    assert c.get("/console/events").status_code == 302  # signed out server-side
    assert not list(r.scan_iter("memrelay:console:*"))


def test_sign_in_redirects_only_inside_the_console(app, engine):
    api = make_api(app, engine)
    c = Console(api)
    for target, expected in (("//evil.example/x", "/console/events"), ("https://evil.example/", "/console/events"),
                             ("/console/records?kind=email", "/console/records?kind=email")):
        token = CSRF.search(c.client.get("/console/login").get_data(as_text=True)).group(1)
        resp = c.client.post("/console/login", data={"api_key": api.key, "csrf_token": token, "next": target})
        assert resp.headers["Location"] == expected


def test_every_post_needs_the_session_csrf_token(app, engine):
    c = console(app, engine)
    _, ids = seed_events(c.api, 1)
    kill(engine, ids[0])
    for method, rule in routes(app):
        if method != "POST":
            continue
        assert c.post(concrete(rule), csrf=False).status_code == 403, rule
        assert c.client.post(concrete(rule), data={"csrf_token": "x" * 43}).status_code == 403, rule
    # nothing happened: the dead letter is still dead
    assert c.post("/console/events/replay", {"event_id": ids[0]}, csrf=False).status_code == 403
    assert engine.events.get(None, ids[0]).status == "dead"
    other_origin = c.post("/console/events/replay", {"event_id": ids[0]}, headers={"Origin": "https://evil.example"})
    assert other_origin.status_code == 403 and engine.events.get(None, ids[0]).status == "dead"


def test_every_route_answers_each_scope_as_the_policy_says(app, engine):
    keys = {scope: console(app, engine, (scope,)) for scope in ("read", "write", "admin")}
    order = {"read": 0, "write": 1, "admin": 2}
    wrong = []
    for method, rule in routes(app):
        if rule == "/console/logout":  # signing out is any session's right; tested above
            continue
        need = expected_scope(method, rule)
        for scope, c in keys.items():
            resp = c.post(concrete(rule)) if method == "POST" else c.get(concrete(rule))
            allowed = order[scope] >= order[need]
            if allowed and resp.status_code == 403 or not allowed and resp.status_code != 403:
                wrong.append((method, rule, scope, resp.status_code))
    assert not wrong


def test_a_revoked_key_is_signed_out(app, engine):
    c = console(app, engine)
    assert c.get("/console/events").status_code == 200
    key_id = engine.tenancy.authenticate(c.api.key).key_id
    engine.tenancy.revoke_key(key_id, org_id=c.api.org_id)
    assert c.get("/console/events").status_code == 302


# --- org isolation ------------------------------------------------------------------------------------------
def test_an_org_sees_and_changes_only_its_own_data(app, engine, backend):
    a, b = console(app, engine), console(app, engine)
    _, ids = seed_events(a.api, 2)
    kill(engine, ids[0])
    a.api.post("/api/v1/upsert", json={"email": "ada@example.org", "type": "contact",
                                       "properties": {"job_title": "CTO"}})
    rid = a.api.post("/api/v1/search", json={"email": "ada@example.org"}).json["data"]["results"][0]["recordId"]
    gl = a.api.post("/api/v1/guidelines", json={"name": "Tone", "content": "Be brief."}).json["data"]

    assert ids[0] not in b.text("/console/events") and "ada@example.org" not in b.text("/console/records")
    assert b.get(f"/console/events/{ids[0]}").status_code == 404
    assert b.get(f"/console/records/{rid}").status_code == 404
    assert b.get(f"/console/guidelines/{gl['id']}").status_code == 404
    b.post("/console/events/replay", {"event_id": ids[0]})
    assert engine.events.get(None, ids[0]).status == "dead"
    assert b.post(f"/console/records/{rid}/delete").status_code == 404
    assert b.post(f"/console/guidelines/{gl['id']}", {"name": "Hacked", "content": "x"}).status_code == 404
    assert a.api.get(f"/api/v1/guidelines/{gl['id']}").json["data"]["name"] == "Tone"
    assert ids[0] in a.text("/console/events")


# --- pages ---------------------------------------------------------------------------------------------------
def test_events_are_paged_and_filtered_server_side(app, engine, backend):
    c = console(app, engine)
    src, ids = seed_events(c.api, 120)
    _, other = seed_events(c.api, 3, event_type="deal.upsert")
    kill(engine, ids[5])
    page1 = c.text("/console/events")
    assert "123 event(s) match" in page1 and page1.count('name="event_id" value=') == 50
    page3 = c.text("/console/events?page=3")
    assert page3.count('name="event_id" value=') == 23 and "Page 3 of 3" in page3
    deals = c.text("/console/events?type=deal.*")
    assert "3 event(s) match" in deals and all(i in deals for i in other)
    dead = c.text("/console/events?status=dead")
    assert "1 event(s) match" in dead and ids[5] in dead and "mapping exploded" in dead
    assert "0 event(s) match" in c.text("/console/events?since=2999-01-01T00:00")
    assert "120 event(s) match" in c.text(f"/console/events?source={src['id']}&size=200")


def test_event_detail_masks_secrets_and_replays_many(app, engine, settings):
    c = console(app, engine)
    _, ids = seed_events(c.api, 3)
    for i in ids[:2]:
        kill(engine, i)
    detail = c.text(f"/console/events/{ids[0]}")
    assert "sk_live_should_be_masked" not in detail and "(masked)" in detail
    assert "p0@example.org" in detail and "dead letter" in detail
    queued_before = queue(redis_lib.Redis.from_url(settings.redis_url), "events").count
    resp = c.post("/console/events/replay", {"event_id": ids[:2]})
    assert resp.status_code == 302
    assert [engine.events.get(None, i).status for i in ids[:2]] == ["received", "received"]
    assert queue(redis_lib.Redis.from_url(settings.redis_url), "events").count >= queued_before + 2
    assert "Replaying 2 event(s)" in c.text("/console/events")


def test_record_page_and_deletion(app, engine):
    c = console(app, engine)
    c.api.post("/api/v1/upsert", json={"email": "ada@example.org", "type": "contact",
                                       "properties": {"job_title": "CTO"}, "source": "hubspot"})
    c.api.post("/api/v1/upsert", json={"email": "ada@example.org", "type": "contact",
                                       "properties": {"job_title": "CEO"}, "source": "hubspot"})
    assert c.api.post("/api/v1/memorize", json={"content": "Ada's team runs on PostgreSQL.",
                                                "email": "ada@example.org"}).status_code == 200
    found = c.text("/console/records?kind=email&value=ada@example.org")
    assert "1 record(s) match" in found
    rid = re.search(r"/console/records/(\w+)", found).group(1)
    assert "1 record(s) match" in c.text("/console/records?prop=job_title&op=EQ&pval=CEO")
    assert "0 record(s) match" in c.text("/console/records?prop=job_title&op=EQ&pval=CTO")
    page = c.text(f"/console/records/{rid}")
    assert "CEO" in page and "CTO" in page  # current value and its history
    assert "PostgreSQL" in page and "Digest as an agent receives it" in page
    assert c.post(f"/console/records/{rid}/delete").status_code == 302
    assert c.get(f"/console/records/{rid}").status_code == 404
    assert c.post("/console/records/cancel-deletion", {"record_id": rid}).status_code == 302
    assert c.get(f"/console/records/{rid}").status_code == 200
    assert c.post(f"/console/records/{rid}/erase", {"confirm": "nope"}).status_code == 400
    assert c.post(f"/console/records/{rid}/erase", {"confirm": rid}).status_code == 302
    assert c.get(f"/console/records/{rid}").status_code == 404


def test_recall_playground_explains_scores(app, engine):
    c = console(app, engine)
    for text in ("Ada's team runs on PostgreSQL.", "Ada likes sailing on weekends."):
        c.api.post("/api/v1/memorize", json={"content": text, "email": "ada@example.org"})
    scoped = c.text("/console/recall?q=which+database&kind=email&value=ada@example.org")
    assert "scope <strong>record</strong>" in scoped and "similarity" in scoped and "recency" in scoped
    assert scoped.index("PostgreSQL") < scoped.index("sailing")
    assert "scope <strong>org</strong>" in c.text("/console/recall?q=database")


def test_recall_playground_deep_mode_without_a_model_says_so(app, engine):
    c = console(app, engine)
    c.api.post("/api/v1/memorize", json={"content": "Ada's team runs on PostgreSQL.", "email": "ada@example.org"})
    assert "no model configured" in c.text("/console/recall")
    resp = c.post("/console/recall", {"q": "which database", "kind": "email", "value": "ada@example.org",
                                      "mode": "deep", "answer": "1"})
    page = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 200 and 'id="deep-unavailable"' in page
    assert "Deep mode needs an LLM and none is configured (set MEMRELAY_LLM_MODEL" in page
    assert "PostgreSQL" in page and "mode <strong>fast</strong>" in page and "Deep recall" not in page


def test_guideline_edit_makes_a_version_and_shows_the_diff(app, engine):
    c = console(app, engine)
    gl = c.api.post("/api/v1/guidelines", json={"name": "Tone", "content": "Be brief.\nNo jargon."}).json["data"]
    resp = c.post(f"/console/guidelines/{gl['id']}", {"name": "Tone", "content": "Be brief.\nUse plain words.",
                                                      "tags": "voice", "keywords": "email, reply"})
    assert resp.status_code == 302 and "from=1" in resp.headers["Location"] and "to=2" in resp.headers["Location"]
    page = c.text(resp.headers["Location"])
    assert "<del>-No jargon.</del>" in page and "<ins>+Use plain words.</ins>" in page
    assert c.api.get(f"/api/v1/guidelines/{gl['id']}").json["data"]["version"] == 2
    routed = c.client.post("/console/routing", data={"csrf_token": c.csrf, "message": "Write a brief email reply to a customer",
                                                      "mode": "fast"})
    assert routed.status_code == 200 and "Use plain words." in routed.get_data(as_text=True)
    deep = c.client.post("/console/routing", data={"csrf_token": c.csrf, "message": "Write an email", "mode": "deep"})
    assert deep.status_code == 200 and "llm_not_configured" in deep.get_data(as_text=True)  # no model: said so


def test_sources_create_copy_and_test_delivery(app, engine):
    c = console(app, engine)
    resp = c.post("/console/sources", {"connector": "generic", "name": "Zapier", "config": "{}", "mapping": ""})
    assert resp.status_code == 302
    page = c.text("/console/sources")
    assert "shown once" in page and "/webhooks/generic/" in page and "Copy URL" in page
    src_id = re.search(r"/console/sources/(src_\w+)/test", page).group(1)
    assert c.post(f"/console/sources/{src_id}/test").status_code == 302
    assert "Test delivery accepted (202)" in c.text("/console/sources")
    assert engine.events.counts(c.api.org_id) == {"received": 1}
    bad = c.post("/console/sources", {"connector": "generic", "config": "{}", "mapping": "version: 2\nobjects: [\n"})
    assert bad.status_code == 422


class _Refusing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_outbound_deliveries_attempts_and_redeliver(app, engine, run_jobs):
    c = console(app, engine)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert c.api.put("/api/v1/webhooks/allowlist", json={"hosts": ["127.0.0.1"]}).status_code == 200
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        sub = c.api.post("/api/v1/webhooks", json={"url": url, "eventTypes": ["memory.property.updated"]})
        assert sub.status_code == 201, sub.json
        sub_id = sub.json["data"]["id"]
        c.api.post("/api/v1/upsert", json={"email": "ada@example.org", "type": "contact",
                                           "properties": {"job_title": "CTO"}})
        dispatch_tick(engine, redis_lib.Redis.from_url(engine.settings.redis_url))  # the outbox dispatcher's tick
        run_jobs()
        page = c.text(f"/console/outbound?sub={sub_id}")
        assert "127.0.0.1" in page and "memory.property.updated" in page and "503 ·" in page
        delivery_id = re.search(r"/deliveries/(\w+)/redeliver", page).group(1)
        assert c.post(f"/console/outbound/{sub_id}/deliveries/{delivery_id}/redeliver").status_code == 302
        assert "queued for redelivery" in c.text(f"/console/outbound?sub={sub_id}")
        rotated = c.post(f"/console/outbound/{sub_id}/rotate-secret")
        assert rotated.status_code == 302 and "whsec_" in c.text(f"/console/outbound?sub={sub_id}")
    finally:
        server.shutdown()


def test_usage_and_health_page(app, engine):
    c = console(app, engine)
    usage = c.text("/console/usage")
    assert "<svg" in usage and "LLM tokens per day" in usage and "requests used this minute" in usage
    for q in ("events", "deliver", "memorize"):
        assert f'<th scope="row">{q}</th>' in usage
    assert "vector index (this org)" in usage


@pytest.mark.parametrize("path", ["/console/static/console.css", "/console/static/console.js"])
def test_static_files_are_served_locally(app, path):
    resp = app.test_client().get(path)
    assert resp.status_code == 200 and len(resp.data) > 500


def test_bad_input_is_an_html_error_page_not_a_500(app, engine):
    c = console(app, engine)
    too_long = c.get("/console/records/" + "r" * 300)
    assert too_long.status_code == 422 and "text/html" in too_long.content_type
    assert c.get("/console/events?status=exploded").status_code == 400
    assert c.get("/console/records?kind=email&value=not-an-email").status_code == 422
    assert c.post("/console/guidelines", {"name": ""}).status_code == 422


def test_redis_down_is_a_503_page_and_the_console_recovers(settings, engine, tmp_path):
    from memrelay.gateway.app import create_app
    from memrelay.supervise.embedded import EmbeddedRedis

    own = EmbeddedRedis(tmp_path / "own-redis" / "redis.sock").start()
    try:
        app = create_app(settings.model_copy(update={"redis_url": own.url}), services=engine)
        c = console(app, engine)
        own.stop()
        down = c.get("/console/events")
        assert down.status_code == 503 and "Redis is unavailable" in down.get_data(as_text=True)
        own.start()
        assert c.get("/console/events").status_code in (200, 302)  # the session, if Redis kept it, or sign in
        c.sign_in()
        assert c.get("/console/events").status_code == 200
    finally:
        own.stop()


def test_console_queries_on_each_database(engine, backend):
    """The console's own SQL (filtered event pages, usage per UTC day and model) on SQLite and PostgreSQL."""
    from datetime import timedelta

    from memrelay.engine.adapters.llm.usage import Usage
    from memrelay.engine.core.util import utcnow
    from memrelay.engine.stores import console_reads
    from memrelay.engine.stores.usage_store import UsageStore

    org = engine.tenancy.get_or_create_org(f"console-{backend}-{utcnow().timestamp()}")
    src = engine.sources.create(org.id, connector="generic")
    engine.events.record(org.id, src["id"], [
        {"connector": "generic", "dedup_key": f"k{i}", "event_type": "deal.upsert" if i % 3 == 0 else "contact.upsert",
         "object_type": "contact", "object_id": str(i), "occurred_at": None, "payload": {}} for i in range(30)])
    page = console_reads.events_page(engine.db, org.id, console_reads.EventFilter(event_type="deal.*"), limit=4)
    assert page.total == 10 and len(page.events) == 4
    later = console_reads.events_page(engine.db, org.id, console_reads.EventFilter(), offset=28, limit=50)
    assert later.total == 30 and len(later.events) == 2
    assert console_reads.events_page(engine.db, org.id, console_reads.EventFilter(
        since=utcnow() + timedelta(minutes=1))).total == 0
    assert console_reads.event_types(engine.db, org.id) == ["contact.upsert", "deal.upsert"]
    store = UsageStore(engine.db)
    for model, tokens in (("gpt-a", 100), ("gpt-a", 50), ("gpt-b", 7)):
        store.record(org.id, Usage(model=model, calls=1, prompt_tokens=tokens, completion_tokens=0,
                                   total_tokens=tokens, cost_usd=tokens / 1000), feature="test")
    rows = console_reads.usage_by_day_and_model(engine.db, org.id, utcnow() - timedelta(days=1))
    today = utcnow().date().isoformat()
    assert [(r["day"], r["model"], r["calls"], r["totalTokens"]) for r in rows] == [
        (today, "gpt-a", 2, 150), (today, "gpt-b", 1, 7)]


@pytest.mark.parametrize("connector,secret", [("form", None), ("generic_hmac", "hmac-test-secret")])
def test_test_delivery_passes_each_connectors_own_verification(app, engine, connector, secret):
    c = console(app, engine)
    src = c.api.post("/api/v1/sources", json={"connector": connector, "secret": secret}).json["data"]
    assert c.post(f"/console/sources/{src['id']}/test").status_code == 302
    assert "Test delivery accepted (202)" in c.text("/console/sources")
    assert engine.events.counts(c.api.org_id) == {"received": 1}
