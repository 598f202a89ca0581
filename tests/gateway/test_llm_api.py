"""The LLM layer over HTTP: guidelines, smart guidelines, prompt, agents, jobs and usage — with budget,
provider-error, invalid-output, timeout and retry behaviour, and 503 when no model is configured."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from memrelay.composition import Services
from memrelay.engine.adapters.llm import Usage
from memrelay.engine.core.settings import Settings
from memrelay.engine.stores.db.models import Org
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.outbox import recent
from memrelay.engine.stores.usage_store import UsageStore
from memrelay.worker.main import run_worker
from tests.support.fake_llm import FakeLLMServer
from tests.support.llm_env import MODEL, with_llm

SMS = {"instructions": [{"prompt": "Write an SMS about the renewal."}], "channel": "sms",
       "context": "Dana renews the Growth plan in May.", "useGuidelines": False}


@pytest.fixture
def llm_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings(settings: Settings, llm: FakeLLMServer, llm_overrides: dict[str, Any]) -> Settings:
    """The shared settings with the fake server as provider (``{"no_llm": True}`` keeps them LLM-less)."""
    if llm_overrides.get("no_llm"):
        return settings
    return with_llm(settings, llm, **llm_overrides)


def error_of(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.json
    assert r.json["error"]["code"] == code, r.json
    return r.json["error"]


@pytest.mark.parametrize("llm_overrides", [{"no_llm": True}])
def test_llm_features_answer_503_without_a_model(api: Any, llm: FakeLLMServer) -> None:
    for path, body in [("/api/v1/prompt", SMS), ("/api/v1/prompt", {**SMS, "async": True}),
                       ("/api/v1/ai/smart-guidelines", {"message": "refund", "mode": "deep"})]:
        err = error_of(api.post(path, json=body), 503, "llm_not_configured")
        assert "MEMRELAY_LLM_MODEL" in err["message"] and err["details"]["setting"] == "MEMRELAY_LLM_MODEL"
    agent = api.post("/api/v1/agents", json={"name": "a", "spec": SMS})
    assert agent.status_code == 201  # saving an agent needs no LLM; running it does
    error_of(api.post(f"/api/v1/agents/{agent.json['data']['id']}/run", json={}), 503, "llm_not_configured")
    fast = api.post("/api/v1/ai/smart-guidelines", json={"message": "refund"})
    assert fast.status_code == 200 and fast.json["data"]["guidelines"] == []  # fast routing needs no LLM
    assert llm.chat_requests == []


def test_guidelines_crud_history_and_smart_guidelines(api: Any, other_api: Any) -> None:
    body = {"name": "Refund policy", "description": "Money back rules", "tags": ["billing"],
            "triggerKeywords": ["refund"], "content": "## Eligibility\nAnnual plans within 30 days.\n\n"
                                                      "## Process\nOpen a billing ticket."}
    created = api.post("/api/v1/guidelines", json=body)
    assert created.status_code == 201 and created.json["data"]["version"] == 1
    gid = created.json["data"]["id"]
    assert api.get(f"/api/v1/guidelines/{gid}").json["data"]["name"] == "Refund policy"
    assert other_api.get(f"/api/v1/guidelines/{gid}").status_code == 404
    patched = api.patch(f"/api/v1/guidelines/{gid}", json={"content": "## Eligibility\nAnnual plans within 14 days."})
    assert patched.json["data"]["version"] == 2 and patched.json["data"]["tags"] == ["billing"]
    replaced = api.put(f"/api/v1/guidelines/{gid}", json={**body, "name": "Refunds"})
    assert replaced.json["data"]["version"] == 3
    history = api.get(f"/api/v1/guidelines/{gid}/history?mode=diff").json["data"]["versions"]
    assert [v["version"] for v in history] == [1, 2, 3] and "+Annual plans within 14 days." in history[1]["diff"]
    assert api.get(f"/api/v1/guidelines/{gid}/history?mode=bogus").status_code == 400
    assert [g["id"] for g in api.get("/api/v1/guidelines?tag=billing").json["data"]["guidelines"]] == [gid]
    error_of(api.post("/api/v1/guidelines", json={"content": "no name"}), 422, "validation_failed")
    error_of(api.patch(f"/api/v1/guidelines/{gid}", json={"bogus": 1}), 422, "validation_failed")

    smart = api.post("/api/v1/ai/smart-guidelines", json={"message": "customer wants a refund", "sessionId": "s"})
    assert smart.status_code == 200 and smart.json["data"]["guidelines"][0]["priority"] == "critical"
    assert "## Refunds (critical)" in smart.json["data"]["compiledContext"]
    again = api.post("/api/v1/ai/smart-guidelines", json={"message": "customer wants a refund", "sessionId": "s"})
    assert again.json["data"]["compiledContext"] == "" and again.json["data"]["tokensSaved"] > 0
    assert api.delete(f"/api/v1/guidelines/{gid}").json == {"success": True, "data": {"id": gid, "deleted": True}}
    assert api.get(f"/api/v1/guidelines/{gid}").status_code == 404


def test_guideline_value_alias_and_smart_guidelines_by_id_and_name(api: Any) -> None:
    # the governance skill's spelling: ``value`` is the markdown, ``governanceScope.triggerKeywords`` the keywords
    made = api.post("/api/v1/guidelines", json={"name": "Pricing Rules", "value": "Quote list prices only.",
                                                "governanceScope": {"triggerKeywords": ["discount"]}})
    assert made.status_code == 201 and made.json["data"]["content"] == "Quote list prices only."
    assert made.json["data"]["triggerKeywords"] == ["discount"]
    error_of(api.post("/api/v1/guidelines", json={"name": "x", "value": "a", "content": "b"}), 422,
             "validation_failed")
    tone = api.post("/api/v1/guidelines", json={"name": "Tone", "content": "Warm and brief."}).json["data"]
    # requested guidelines are delivered whatever the message scores; unknown names are reported, not fatal
    smart = api.post("/api/v1/ai/smart-guidelines", json={
        "message": "quarterly logistics report", "guidelineIds": [tone["id"]],
        "guidelineNames": ["PRICING rules", "No Such Guideline"]}).json["data"]
    assert [s["name"] for s in smart["selection"]][:2] == ["Tone", "Pricing Rules"], smart
    assert "Warm and brief." in smart["compiledContext"] and "Quote list prices only." in smart["compiledContext"]
    assert smart["selection"][0]["content"].endswith("Warm and brief.")
    assert smart["unresolvedGuidelines"] == ["No Such Guideline"]


@pytest.mark.parametrize("body", [
    {"instructions": []},
    {"instructions": [{"maxSteps": 2}]},
    {"instructions": [{"prompt": "x", "maxSteps": 0}]},
    {"instructions": [{"prompt": "x"}], "outputs": [{"name": "a"}, {"name": "a"}]},
    {"instructions": [{"prompt": "x"}], "outputs": [{"name": "bad name"}]},
    {"instructions": [{"prompt": "x"}], "channel": "fax"},
    {"instructions": "write something"},
])
def test_invalid_prompt_requests_are_422(api: Any, llm: FakeLLMServer, body: dict[str, Any]) -> None:
    error_of(api.post("/api/v1/prompt", json=body), 422, "validation_failed")
    assert llm.chat_requests == []


def test_prompt_returns_outputs_and_usage_and_records_spend(api: Any, llm: FakeLLMServer, backend: str) -> None:
    llm.reply_json({"text": "Dana, your Growth plan renews in May."})
    r = api.post("/api/v1/prompt", json=SMS)
    assert r.status_code == 200, r.json
    assert r.json["data"]["text"] == "Dana, your Growth plan renews in May." and r.json["data"]["channel"]["compliant"] is True
    usage = r.json["data"]["usage"]
    assert usage["model"] == MODEL and usage["calls"] == 1 and usage["costUsd"] > 0
    spent = api.get("/api/v1/usage").json["data"]
    assert spent["byFeature"]["generation"]["calls"] == 1
    assert spent["spentUsd"] == pytest.approx(usage["costUsd"]) and spent["monthlyBudgetUsd"] is None


def test_budget_exhausted_is_402_naming_the_limit(api: Any, engine: Services, llm: FakeLLMServer,
                                                 backend: str) -> None:
    with engine.db.session() as s:
        s.execute(update(Org).where(Org.id == api.org_id).values(settings={"monthly_budget_usd": 0.5}))
    UsageStore(engine.db).record(api.org_id, Usage(10, 10, 20, 0.6, MODEL, 1), feature="generation")
    err = error_of(api.post("/api/v1/prompt", json=SMS), 402, "budget_exhausted")
    assert err["details"]["limit_usd"] == 0.5 and "$0.50" in err["message"]
    api.post("/api/v1/guidelines", json={"name": "Refunds", "content": "Refund rules.", "triggerKeywords": ["refund"]})
    error_of(api.post("/api/v1/ai/smart-guidelines", json={"message": "refund", "mode": "deep"}), 402,
             "budget_exhausted")
    assert llm.chat_requests == []  # refused before anything was sent
    assert api.get("/api/v1/usage").json["data"]["monthlyBudgetUsd"] == 0.5


@pytest.mark.parametrize("llm_overrides", [{"llm_monthly_budget_usd": 0.0}])
def test_default_budget_from_settings(api: Any, llm: FakeLLMServer) -> None:
    err = error_of(api.post("/api/v1/prompt", json=SMS), 402, "budget_exhausted")
    assert err["details"]["limit_usd"] == 0.0 and llm.chat_requests == []


def test_provider_error_is_502_and_nothing_is_written(api: Any, engine: Services, llm: FakeLLMServer) -> None:
    llm.reply("Outline: mention the renewal.")
    llm.fail(400, message="This model's maximum context length is 8192 tokens")
    body = {**SMS, "instructions": [{"prompt": "Outline."}, {"prompt": "Write the SMS."}],
            "memorize": {"email": "dana@acme.com"}}
    err = error_of(api.post("/api/v1/prompt", json=body), 502, "llm_upstream_error")
    assert "maximum context length is 8192 tokens" in err["message"] and err["details"]["provider_status"] == 400
    with engine.db.read() as s:
        assert recent(s, api.org_id, event_type="generation.completed") == []
    r = api.post("/api/v1/recall", json={"email": "dana@acme.com", "type": "contact"})
    assert r.status_code == 404  # memorize-back never ran: no record was created
    assert api.get("/api/v1/usage").json["data"]["byFeature"]["generation"]["calls"] == 1  # the spent step is billed


def test_invalid_json_twice_is_502_llm_invalid_output(api: Any, llm: FakeLLMServer) -> None:
    llm.reply_invalid_json(times=2)
    err = error_of(api.post("/api/v1/prompt", json=SMS), 502, "llm_invalid_output")
    assert len(llm.chat_requests) == 2 and len(err["details"]["errors"]) == 2


def test_retry_after_a_server_error_then_success(api: Any, llm: FakeLLMServer) -> None:
    llm.fail(503, message="overloaded")
    llm.reply_json({"text": "Dana, your Growth plan renews in May."})
    r = api.post("/api/v1/prompt", json=SMS)
    assert r.status_code == 200 and len(llm.chat_requests) == 2 and r.json["data"]["usage"]["calls"] == 1


@pytest.mark.parametrize("llm_overrides", [{"llm_timeout_s": 0.5}])
def test_timeout_is_502_llm_timeout(api: Any, llm: FakeLLMServer) -> None:
    llm.delay(3)
    err = error_of(api.post("/api/v1/prompt", json=SMS), 502, "llm_timeout")
    assert err["details"]["timeout_s"] == 0.5 and len(llm.chat_requests) == 1  # timeouts are not retried


def test_async_prompt_runs_as_a_job_with_status(api: Any, other_api: Any, app: Any, engine: Services,
                                                llm: FakeLLMServer) -> None:
    queued = api.post("/api/v1/prompt", json={**SMS, "async": True, "memorize": {"email": "dana@acme.com"}})
    assert queued.status_code == 202 and queued.json["data"]["status"] == "queued"
    job_id = queued.json["data"]["jobId"]
    assert api.get(f"/api/v1/jobs/{job_id}").json["data"]["status"] == "queued"
    assert other_api.get(f"/api/v1/jobs/{job_id}").status_code == 404  # another org's job is invisible
    llm.reply_json({"text": "Dana, your Growth plan renews in May."})
    run_worker(engine.settings, burst=True)
    done = api.get(f"/api/v1/jobs/{job_id}").json["data"]
    assert done["status"] == "finished", done
    assert done["result"]["text"] == "Dana, your Growth plan renews in May." and done["result"]["usage"]["calls"] == 1
    rec = engine.records.get(api.org_id, Identifiers(email="dana@acme.com"))
    assert rec["recordId"] == done["result"]["memorized"]["recordId"]
    assert api.get("/api/v1/jobs/nope").status_code == 404


def test_agents_api(api: Any, llm: FakeLLMServer, backend: str) -> None:
    spec = {**SMS, "instructions": [{"prompt": "Write an SMS about {{input}}."}]}
    created = api.post("/api/v1/agents", json={"name": "nudge", "description": "SMS nudges", "spec": spec})
    assert created.status_code == 201 and created.json["data"]["variables"] == ["input"]
    aid = created.json["data"]["id"]
    error_of(api.post("/api/v1/agents", json={"name": "nudge", "spec": spec}), 409, "conflict")
    error_of(api.post("/api/v1/agents", json={"name": "bad", "spec": {"instructions": []}}), 422, "validation_failed")
    assert [a["name"] for a in api.get("/api/v1/agents").json["data"]["agents"]] == ["nudge"]
    assert api.patch(f"/api/v1/agents/{aid}", json={"description": "v2"}).json["data"]["version"] == 2
    error_of(api.post(f"/api/v1/agents/{aid}/run", json={}), 422, "validation_failed")
    llm.reply_json({"text": "Your renewal is in May."})
    ran = api.post(f"/api/v1/agents/{aid}/run", json={"input": "the renewal"})
    assert ran.status_code == 200 and ran.json["data"]["text"] == "Your renewal is in May." and ran.json["data"]["agentId"] == aid
    assert "Write an SMS about the renewal." in str(llm.chat_requests[0].messages)
    assert api.delete(f"/api/v1/agents/{aid}").status_code == 200
    assert api.get(f"/api/v1/agents/{aid}").status_code == 404
