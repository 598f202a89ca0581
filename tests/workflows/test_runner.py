"""Running workflows against the real engine: triggers, per-step status and log, retries, conditions,
generation through the fake LLM server, deliveries to local Slack/SMTP sinks, schedules, RQ jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis as redis_lib
from rq.registry import FailedJobRegistry

from memrelay.composition import Services
from memrelay.engine.memory.memories import MemorizeRequest
from memrelay.engine.stores.identity import Identifiers
from memrelay.queue.connection import queue
from memrelay.queue.jobs import workflow_run_enqueuer
from memrelay.workflows import store
from memrelay.workflows.runner import Runner
from memrelay.workflows.triggers import on_event, start_manual, tick

LEAD = {"email": "ada@lovelace.io", "form_name": "Demo request",
        "fields": {"first_name": "Ada", "message": "We want memory for our support bots"}}


def _org(eng: Services, *enabled: str) -> str:
    org = eng.tenancy.get_or_create_org(f"wf-{datetime.now().timestamp()}").id
    for wf in enabled:
        store.set_enabled(eng.db, org, wf, True)
    return org



def _execute(eng: Services, run_ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for rid in run_ids:
        try:
            Runner(eng.db, eng.workflow_steps, retry_base_s=0.01).execute(rid)
        except Exception:  # noqa: BLE001 - recorded on the run
            pass
        run = store.load_run(eng.db, rid)
        out.append(store.get_run(eng.db, run.org_id, rid))
    return out


def test_form_lead_memorizes_digests_generates_and_posts_to_slack(llm_engine: Services, llm, slack,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMRELAY_SLACK_WEBHOOK_URL", slack.url)
    eng = llm_engine
    org = _org(eng, "form-lead-slack")
    started = on_event(eng, org, "form", "form.submitted", None, LEAD, enqueue=lambda _r: None)
    assert len(started) == 1
    assert on_event(eng, org, "form", "form.submitted", None, LEAD, enqueue=lambda _r: None) == []  # idempotent
    assert on_event(eng, org, "stripe", "form.submitted", None, LEAD, enqueue=lambda _r: None) == []
    (run,) = _execute(eng, started)
    assert run["status"] == "succeeded", run
    steps = {s["stepId"]: s for s in run["steps"]}
    assert [s["stepId"] for s in run["steps"]] == ["memorize", "digest", "summary", "notify"]
    assert all(s["status"] == "succeeded" and s["attempts"] == 1 for s in steps.values())
    assert steps["memorize"]["output"]["memoriesCreated"] >= 1
    assert "ada@lovelace.io" in steps["digest"]["output"]["markdown"]
    assert steps["summary"]["output"]["text"].startswith("New lead worth a call")
    assert slack.posts == [{"text": "New lead ada@lovelace.io\nNew lead worth a call. Next action: reply today."}]
    assert any("posted to slack (200)" in line for line in steps["notify"]["log"])
    # the LLM saw the digest of the memorized submission as context
    assert any("support bots" in (m.get("content") or "") for r in llm.chat_requests for m in r.messages)
    rec = eng.records.get(org, Identifiers(email="ada@lovelace.io"))
    assert rec["type"] == "contact"


def test_without_llm_generate_fails_with_llm_not_configured_in_rq(engine: Services, run_jobs, slack,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMRELAY_SLACK_WEBHOOK_URL", slack.url)
    org = _org(engine, "form-lead-slack")
    conn = redis_lib.Redis.from_url(engine.settings.redis_url)
    (run_id,) = on_event(engine, org, "form", "form.submitted", None, LEAD,
                         enqueue=workflow_run_enqueuer(conn))  # enqueued on the real Redis
    run_jobs()
    run = store.get_run(engine.db, org, run_id)
    assert run["status"] == "failed" and run["error"]["code"] == "llm_not_configured"
    steps = {s["stepId"]: s for s in run["steps"]}
    assert steps["memorize"]["status"] == "succeeded"
    assert steps["summary"]["status"] == "failed" and steps["summary"]["attempts"] == 1  # not retried
    assert steps["summary"]["error"]["code"] == "llm_not_configured"
    assert "MEMRELAY_LLM_MODEL" in steps["summary"]["log"][-1]
    assert "notify" not in steps and slack.posts == []
    assert run_id in FailedJobRegistry(queue=queue(conn, "default")).get_job_ids()


def test_stripe_payment_sends_onboarding_email(llm_engine: Services, smtp) -> None:
    org = _org(llm_engine, "stripe-payment-onboarding")
    payload = {"customer_email": "grace@hopper.dev", "amount_display": "$49.00", "description": "Pro plan"}
    started = on_event(llm_engine, org, "stripe", "payment_intent.succeeded", None, payload,
                       enqueue=lambda _r: None)
    (run,) = _execute(llm_engine, started)
    assert run["status"] == "succeeded", run
    (mail,) = smtp.messages
    assert mail["rcpt"] == ["grace@hopper.dev"]
    assert "Subject: Welcome aboard" in mail["data"] and "setup guide" in mail["data"]
    with llm_engine.db.read() as s:
        mems = llm_engine.memories.list_for_record(s, run["steps"][1]["output"]["recordId"])
    texts = " ".join(m["text"] for m in mems)
    assert "$49.00" in texts and "Generated email message" in texts  # payment + memorized-back draft


def test_false_condition_skips_the_rest(engine: Services) -> None:
    org = _org(engine, "hubspot-contact-welcome")
    started = on_event(engine, org, "hubspot", "contact.creation", "rec_x", {"firstname": "No Email"},
                       enqueue=lambda _r: None)
    (run,) = _execute(engine, started)
    assert run["status"] == "succeeded"
    assert [(s["stepId"], s["status"]) for s in run["steps"]] == [
        ("has_email", "succeeded"), ("enrich", "skipped"), ("digest", "skipped"), ("welcome_email", "skipped")]
    assert run["steps"][0]["output"] == {"passed": False}


def test_hubspot_welcome_enriches_and_drafts(llm_engine: Services) -> None:
    org = _org(llm_engine, "hubspot-contact-welcome")
    payload = {"email": "linus@kernel.org", "firstname": "Linus", "lastname": "T", "jobtitle": "Maintainer",
               "company": None}
    started = on_event(llm_engine, org, "hubspot", "contact.creation", None, payload, enqueue=lambda _r: None)
    (run,) = _execute(llm_engine, started)
    assert run["status"] == "succeeded", run
    rec = llm_engine.records.get(org, Identifiers(email="linus@kernel.org"))
    assert rec["properties"]["first_name"]["value"] == "Linus"
    assert rec["properties"]["job_title"]["value"] == "Maintainer"
    draft = run["steps"][-1]["output"]
    assert draft["subject"] == "Welcome aboard" and draft["memorized"]["recordId"] == rec["recordId"]


def test_transient_delivery_failure_is_retried(engine: Services, tmp_path, monkeypatch) -> None:
    from tests.workflows.sinks import HttpSink

    sink = HttpSink(statuses=[503, 200])
    try:
        (engine.settings.data_dir / "workflows").mkdir(parents=True, exist_ok=True)
        (engine.settings.data_dir / "workflows" / "ping.yaml").write_text(
            "id: ping\nname: Ping\ntrigger: {type: manual}\nsteps:\n"
            f"  - id: send\n    type: deliver\n    via: webhook\n    url: {sink.url}\n"
            "    text: 'hello {{ input.who }}'\n    payload: {who: '{{ input.who }}'}\n    retries: 2\n")
        org = _org(engine)
        rid = start_manual(engine, org, "ping", {"who": "n8n"}, enqueue=lambda _r: None)
        (run,) = _execute(engine, [rid])
    finally:
        sink.close()
    assert run["status"] == "succeeded"
    assert run["steps"][0]["attempts"] == 2 and "attempt 1 failed: delivery_failed" in " ".join(run["steps"][0]["log"])
    assert sink.posts == [{"text": "hello n8n", "who": "n8n"}]


def test_daily_digest_of_deferred_signals_runs_once_per_slot(engine: Services, slack,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMRELAY_SLACK_WEBHOOK_URL", slack.url)
    org = _org(engine, "daily-deferred-digest")
    for email, text in (("kim@x.io", "Asked to revisit pricing next quarter"), ("lee@y.io", "Wants a demo later")):
        engine.memories.memorize(org, MemorizeRequest(content=text, email=email, tags=["deferred"]))
    engine.memories.memorize(org, MemorizeRequest(content="Bought the Pro plan", email="max@z.io", tags=["crm"]))
    now = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    started = tick(engine, now, enqueue=lambda _r: None)
    assert len(started) == 1
    assert tick(engine, now + timedelta(minutes=1), enqueue=lambda _r: None) == []  # same slot
    assert tick(engine, now.replace(hour=7), enqueue=lambda _r: None) == []
    (run,) = _execute(engine, started)
    assert run["status"] == "succeeded", run
    texts = sorted(p["text"] for p in slack.posts)
    assert len(texts) == 2 and texts[0].startswith("Deferred signals for kim@x.io (1):")
    assert "revisit pricing" in texts[0] and "max@z.io" not in " ".join(texts)
    assert {s["item"] for s in run["steps"] if s["stepId"] == "notify"} == {0, 1}


def test_api_lists_enables_runs_and_reports(api, run_jobs, slack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMRELAY_SLACK_WEBHOOK_URL", slack.url)
    listed = api.get("/api/v1/workflows").get_json()["data"]["workflows"]
    assert {w["id"] for w in listed} >= {"form-lead-slack", "daily-deferred-digest"}
    assert not any(w["enabled"] for w in listed)
    assert api.post("/api/v1/workflows/daily-deferred-digest/enable").get_json()["data"]["enabled"] is True
    assert api.get("/api/v1/workflows/nope").status_code == 404
    api.post("/api/v1/memorize", json={"content": "Zoe wants a call back after the board meeting.", "email": "zoe@q.io",
                                       "tags": ["deferred"]})
    assert api.get("/api/v1/signals?tag=deferred").get_json()["data"]["items"][0]["email"] == "zoe@q.io"
    resp = api.post("/api/v1/workflows/daily-deferred-digest/run", json={})
    assert resp.status_code == 202
    run_jobs()
    run = api.get(resp.get_json()["data"]["statusUrl"]).get_json()["data"]
    assert run["status"] == "succeeded" and run["trigger"]["type"] == "manual"
    runs = api.get("/api/v1/workflows/daily-deferred-digest/runs").get_json()["data"]["runs"]
    assert runs[0]["runId"] == run["runId"] and len(runs[0]["steps"]) == 3
    assert "zoe@q.io" in slack.posts[0]["text"]
    assert api.get("/api/v1/workflows/daily-deferred-digest/runs?limit=0").status_code == 400
