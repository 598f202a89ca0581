"""The console in a real browser: Playwright drives Debian's Chromium against a running ``memrelay up`` (gateway,
worker, embedded Redis, SQLite, Milvus Lite) seeded through its API and webhook receiver.

Run with ``make test-console`` (installs Chromium with apt when missing; ``playwright install`` is never run).
Screenshots are kept under ``.build/console-screenshots/``; with ``MEMRELAY_UPDATE_README_SCREENSHOTS=1`` the two
shown in the README are copied to ``docs/images/``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.event_log import EventLog
from tests.support.fake_llm import FakeLLMServer
from tests.support.processes import clean_env, free_port, wait_for
from tests.workflows.sinks import schema_responder as workflow_responder

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".build" / "console-screenshots"
README_SHOTS = {"events.png": "console-events.png", "guideline-diff.png": "console-guideline-diff.png"}
CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 20_000


DEEP_ANSWER = "The team runs on PostgreSQL (from the recalled memories)."


def schema_responder(messages: list[dict[str, Any]]) -> str:
    """The workflow sinks' responder, plus deep recall's two structured steps (reflection, answer)."""
    system = next((str(m.get("content") or "") for m in messages if m.get("role") == "system"), "")
    if '"title":"_Reflection"' in system:
        return json.dumps({"sufficient": True, "followUpQueries": []})
    if '"title":"_Answer"' in system:
        return json.dumps({"answer": DEEP_ANSWER, "citedMemoryIds": []})
    return workflow_responder(messages)


@dataclass
class Running:
    url: str
    admin_key: str
    data_dir: Path
    log: Path

    def api(self, method: str, path: str, key: str | None = None, **kw: Any) -> Any:
        r = requests.request(method, self.url + path, headers={"Authorization": f"Bearer {key or self.admin_key}"},
                             timeout=60, **kw)
        assert r.status_code < 300, (method, path, r.status_code, r.text[:500])
        return r.json()["data"] if r.content else None


class _Refusing(BaseHTTPRequestHandler):
    """An outbound webhook receiver that is down (503), so deliveries show failed attempts."""

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def memrelay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """``python -m memrelay.cli.main up`` on a free port (one web worker, one RQ worker), its LLM a local fake."""
    tmp = tmp_path_factory.mktemp("console")
    port = free_port()
    with FakeLLMServer(responder=schema_responder) as llm:
        env = clean_env(MEMRELAY_PORT=str(port), MEMRELAY_WORKERS="1", MEMRELAY_WEB_WORKERS="1",
                        MEMRELAY_DATA_DIR=str(tmp / "data"), MEMRELAY_LLM_MODEL="openai/gpt-4o-mini",
                        MEMRELAY_LLM_API_BASE=llm.base_url, MEMRELAY_LLM_API_KEY="test",
                        MEMRELAY_EVENT_MAX_ATTEMPTS="2")  # a failing event is a dead letter after one retry
        log = tmp / "up.log"
        proc = subprocess.Popen([sys.executable, "-m", "memrelay.cli.main", "up"], cwd=tmp, env=env,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"

            def ready() -> bool:
                try:
                    return requests.get(url + "/readyz", timeout=5).status_code == 200
                except requests.RequestException:
                    return False

            assert wait_for(lambda: proc.poll() is not None or ready(), 150), log.read_text()[-3000:]
            assert proc.poll() is None, log.read_text()[-3000:]
            yield Running(url, (tmp / "data" / "admin_key").read_text().strip(), tmp / "data", log)
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@dataclass
class Seeded:
    dead_event: str
    guideline_id: str
    record_email: str
    read_key: str
    hook: str


@pytest.fixture(scope="module")
def seeded(memrelay: Running) -> Iterator[Seeded]:
    """Data through the API and the webhook receiver: 60 inbound events, a dead letter, a record with history and
    contradicting memories, a guideline, an outbound subscription whose receiver is down, a read-only key."""
    m = memrelay
    src = m.api("POST", "/api/v1/sources", json={"connector": "generic", "name": "Website (Zapier)"})
    hook = m.url + src["webhookPath"]
    for i in range(60):
        r = requests.post(hook, json={"event_id": f"signup-{i}", "object_type": "contact",
                                      "email": f"person{i}@example.org", "first_name": f"Person {i}",
                                      "api_token": "tok_should_never_show"}, timeout=30)
        assert r.status_code == 202, r.text
    bad = requests.post(hook, json={"event_id": "broken-1", "object_type": "contact", "email": "not an email",
                                         "api_token": "tok_should_never_show"},
                        timeout=30).json()["eventIds"][0]
    events = EventLog(Database(f"sqlite:///{(m.data_dir / 'memrelay.db').resolve()}"))
    # the worker fails it for real (invalid email), retries it once after its backoff and dead-letters it
    assert wait_for(lambda: events.get(None, bad).status == "dead", 90), events.get(None, bad).status

    email = "ada@example.org"
    m.api("POST", "/api/v1/upsert", json={"email": email, "type": "contact", "source": "hubspot",
                                          "properties": {"job_title": "CTO", "company_name": "Analytical Engines"}})
    m.api("POST", "/api/v1/upsert", json={"email": email, "type": "contact", "source": "hubspot",
                                          "properties": {"job_title": "CEO"}})
    for text in ("Ada's team runs its analytics on MySQL.", "Ada's team moved its analytics to PostgreSQL.",
                 "Ada prefers short emails with a clear next step."):
        m.api("POST", "/api/v1/memorize", json={"content": text, "email": email})
    m.api("POST", "/api/v1/prompt", json={"instructions": [{"prompt": "Write a one-line follow-up to Ada."}],
                                          "email": email, "channel": "email"})  # LLM usage for the charts
    gl = m.api("POST", "/api/v1/guidelines", json={
        "name": "Email tone", "description": "How we write to customers", "tags": ["email"],
        "triggerKeywords": ["email", "reply"],
        "content": "# Tone\nBe brief.\nAvoid jargon.\n\n# Sign-off\nEnd with one clear next step."})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    m.api("PUT", "/api/v1/webhooks/allowlist", json={"hosts": ["127.0.0.1"]})
    sub = m.api("POST", "/api/v1/webhooks", json={"url": f"http://127.0.0.1:{server.server_address[1]}/hook",
                                                  "eventTypes": ["memory.property.updated"],
                                                  "description": "CRM sync"})
    m.api("POST", "/api/v1/upsert", json={"email": email, "type": "contact", "properties": {"city": "London"}})
    read_key = m.api("POST", "/api/v1/keys", json={"name": "viewer", "scopes": ["read"]})["key"]
    wait_for(lambda: bool(m.api("GET", f"/api/v1/webhooks/{sub['id']}/deliveries")["deliveries"]), 30)
    try:
        yield Seeded(bad, gl["id"], email, read_key, hook)
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make test-console` (it installs it) or "
                    "`python -m tests.support.chromium`")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


def new_page(browser: Any) -> Any:
    page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


def sign_in(page: Any, url: str, key: str) -> None:
    page.goto(url + "/console/")
    assert "/console/login" in page.url
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/console/events**")


def shot(page: Any, name: str, *, full: bool = True) -> None:
    page.screenshot(path=str(SHOTS / name), full_page=full)


UNLABELLED_JS = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => el.type !== 'hidden')
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map(el => el.name || el.id || el.outerHTML.slice(0, 80))"""

CONTRAST_JS = """(selectors) => {
  const rgb = s => s.match(/[\\d.]+/g).slice(0, 4).map(Number);
  const lum = ([r, g, b]) => { const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
                               return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const bg = el => { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
                     if (c.length < 4 || c[3] > 0) return c; } return [255, 255, 255]; };
  const out = [];
  for (const sel of selectors) for (const el of document.querySelectorAll(sel)) {
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(bg(el));
    out.push([sel, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]);
  }
  return out;
}"""


def check_page_basics(page: Any) -> None:
    """Every visible form control has a label; text, links, buttons and badges keep >= 4.5:1 contrast."""
    assert page.evaluate(UNLABELLED_JS) == [], page.url
    low = [(sel, round(r, 2)) for sel, r in page.evaluate(CONTRAST_JS, ["main p", "main a", "main button", "main td",
                                                                          ".status", "header.top a", "small"])
           if r < 4.5]
    assert not low, (page.url, low[:5])


# --- tests ------------------------------------------------------------------------------------------------------
def test_sign_in_by_keyboard_and_keyboard_navigation(browser: Any, memrelay: Running, seeded: Seeded) -> None:
    page = new_page(browser)
    page.goto(memrelay.url + "/console/login")
    shot(page, "login.png")
    assert page.evaluate("document.activeElement.id") == "api_key"  # autofocus
    page.keyboard.type(memrelay.admin_key)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Sign in"
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/events**")
    # the first Tab stop is the skip link; it moves focus to the main content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    assert page.evaluate("getComputedStyle(document.activeElement).left") != "-9999px"  # visible when focused
    # the record search form, by keyboard alone: reach the value field, type, submit with Enter
    page.goto(memrelay.url + "/console/records")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "r-value":
            break
    else:
        pytest.fail("the key value field is not reachable with Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # a visible focus indicator
    page.keyboard.type(seeded.record_email)
    page.keyboard.press("Enter")
    page.wait_for_url("**value=ada%40example.org**")
    assert "1 record(s) match" in page.inner_text("main")


def test_walk_every_page(browser: Any, memrelay: Running, seeded: Seeded) -> None:
    page = new_page(browser)
    sign_in(page, memrelay.url, memrelay.admin_key)
    main = page.locator("main")

    # 1. inbound events: server-side paging over 61 events, filters, detail with masked secrets
    assert "61 event(s) match" in main.inner_text()
    assert page.locator('input[name="event_id"]').count() == 50
    check_page_basics(page)
    shot(page, "events.png", full=False)
    page.get_by_role("link", name="Next ›", exact=True).first.click()
    assert page.locator('input[name="event_id"]').count() == 11
    page.goto(memrelay.url + "/console/events?status=dead")
    assert "1 event(s) match" in main.inner_text()
    page.get_by_role("link", name=seeded.dead_event).click()
    text = main.inner_text()
    assert "dead letter" in text and "tok_should_never_show" not in text and "(masked)" in text
    # the delivery's request headers as stored (masked before storage) and the check that let it in
    assert "Request headers" in text and "python-requests" in text and "path-token" in text
    assert seeded.hook.rsplit("/", 1)[1] not in text  # the path token is never shown
    check_page_basics(page)
    shot(page, "event-detail.png")

    # 2. records: search, provenance, history, memories with superseded ones, digest
    page.get_by_role("link", name="Records", exact=True).click()
    page.get_by_label("Key value", exact=True).fill(seeded.record_email)
    page.get_by_role("button", name="Search", exact=True).click()
    page.locator("table.grid a").first.click()
    text = main.inner_text()
    assert "CEO" in text and "CTO" in text and "hubspot" in text and "Digest as an agent receives it" in text
    page.get_by_role("link", name="Show superseded", exact=True).click()
    check_page_basics(page)
    shot(page, "record.png")

    # 3. recall playground, scoped to the record
    page.get_by_role("link", name="Recall", exact=True).click()
    page.get_by_label("Query", exact=True).fill("which database does the team use")
    page.get_by_label("Key value", exact=True).fill(seeded.record_email)
    page.get_by_role("button", name="Recall", exact=True).click()
    text = main.inner_text()
    assert "similarity" in text and "recency" in text and "PostgreSQL" in text
    check_page_basics(page)
    shot(page, "recall.png")
    # deep mode against the fake model: reflection and the generated answer are shown
    page.get_by_label("deep", exact=True).check()
    page.get_by_role("button", name="Recall", exact=True).click()
    text = main.inner_text()
    assert "Deep recall" in text and "Reflection rounds" in text and "mode deep" in text and DEEP_ANSWER in text
    check_page_basics(page)
    shot(page, "recall-deep.png")

    # 4. guidelines and the routing playground
    page.get_by_role("link", name="Guidelines", exact=True).click()
    assert "Email tone" in main.inner_text()
    check_page_basics(page)
    page.get_by_role("link", name="Routing", exact=True).click()
    page.get_by_label("Task", exact=True).fill("Draft a reply email to a customer asking for pricing")
    page.get_by_role("button", name="Route", exact=True).click()
    assert "Email tone" in main.inner_text()
    check_page_basics(page)
    shot(page, "routing.png")

    # 5. outbound: the subscription, its failed attempts (503) and a redelivery
    page.get_by_role("link", name="Outbound", exact=True).click()
    assert "CRM sync" in main.inner_text() and "503" in main.inner_text()
    check_page_basics(page)
    shot(page, "outbound.png")
    page.get_by_role("button", name="Redeliver", exact=True).first.click()
    assert "queued for redelivery" in main.inner_text()

    # 6. usage and health: charts, queues, workers, index
    page.get_by_role("link", name="Usage & health", exact=True).click()
    assert page.locator("svg.chart").count() == 3
    text = main.inner_text()
    assert "gpt-4o-mini" in text and "alive" in text and "requests used this minute" in text
    check_page_basics(page)
    shot(page, "usage.png")

    # 7. sources: create one, see its URL once, copy it, send a test delivery, lint
    page.get_by_role("link", name="Sources", exact=True).click()
    page.get_by_label("Connector", exact=True).select_option("generic")
    page.get_by_label("Name", exact=True).fill("n8n test")
    page.get_by_role("button", name="Create source", exact=True).click()
    assert "shown once" in main.inner_text()
    page.get_by_role("button", name="Send test delivery", exact=True).last.click()
    assert "Test delivery accepted (202)" in main.inner_text()
    assert page.get_by_role("button", name="Copy URL", exact=True).count() == 2
    assert "clean" in main.inner_text()
    check_page_basics(page)
    shot(page, "sources.png")


def test_replay_a_dead_letter(browser: Any, memrelay: Running, seeded: Seeded) -> None:
    page = new_page(browser)
    sign_in(page, memrelay.url, memrelay.admin_key)
    page.goto(memrelay.url + "/console/events?status=dead")
    page.get_by_label(f"Select {seeded.dead_event}").check()
    page.get_by_role("button", name="Replay selected", exact=True).click()
    assert "Replaying 1 event(s)" in page.locator("main").inner_text()
    ev = memrelay.api("GET", f"/api/v1/events/{seeded.dead_event}")
    assert ev["status"] != "dead" and ev["attempts"] <= 1  # back in the pipeline with its attempts reset
    shot(page, "replayed.png")


def test_edit_a_guideline_and_see_the_diff(browser: Any, memrelay: Running, seeded: Seeded) -> None:
    page = new_page(browser)
    sign_in(page, memrelay.url, memrelay.admin_key)
    page.goto(f"{memrelay.url}/console/guidelines/{seeded.guideline_id}")
    content = page.get_by_label("Content (markdown)", exact=True)
    content.fill(content.input_value().replace("Avoid jargon.", "Use the customer's own words."))
    page.get_by_role("button", name="Save as a new version", exact=True).click()
    diff = page.locator("#diff")
    assert "-Avoid jargon." in diff.locator("del").all_inner_texts()
    assert "+Use the customer's own words." in diff.locator("ins").all_inner_texts()
    assert memrelay.api("GET", f"/api/v1/guidelines/{seeded.guideline_id}")["version"] == 2
    check_page_basics(page)
    shot(page, "guideline-diff.png")
    if os.environ.get("MEMRELAY_UPDATE_README_SCREENSHOTS") == "1":
        (ROOT / "docs" / "images").mkdir(parents=True, exist_ok=True)
        for src, dst in README_SHOTS.items():
            shutil.copyfile(SHOTS / src, ROOT / "docs" / "images" / dst)


def test_a_read_only_key_cannot_open_admin_pages(browser: Any, memrelay: Running, seeded: Seeded) -> None:
    page = new_page(browser)
    sign_in(page, memrelay.url, seeded.read_key)
    resp = page.goto(memrelay.url + "/console/usage")
    assert resp.status == 403 and "admin" in page.locator("main").inner_text()
    page.goto(memrelay.url + "/console/sources")
    assert page.get_by_role("button", name="Create source", exact=True).count() == 0
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url("**/console/login**")
    assert page.goto(memrelay.url + "/console/events").url.endswith("/console/login?next=/console/events")


def test_the_event_list_is_live(browser: Any, memrelay: Running, seeded: Seeded) -> None:
    """Ticking "Live" reloads the list every 10 s: an event delivered meanwhile appears without a click."""
    page = new_page(browser)
    sign_in(page, memrelay.url, memrelay.admin_key)
    total = int(page.locator("#events-total").inner_text().split()[0])
    page.get_by_label("Live: refresh every 10 s", exact=True).check()
    r = requests.post(seeded.hook, json={"event_id": "late-arrival", "object_type": "contact",
                                         "email": "late@example.org"}, timeout=30)
    assert r.status_code == 202, r.text
    page.wait_for_function("n => document.querySelector('#events-total').textContent.startsWith(n + ' ')",
                           arg=total + 1, timeout=25_000)
