"""The console's pages. Each view authorises (``console_auth``), calls the engine service the JSON API calls
for the same thing (``state().services``) and renders a template; nothing here talks HTTP to the gateway."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import redis
from flask import Response, g, redirect, render_template, request, url_for
from pydantic import ValidationError
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, StartedJobRegistry

from memrelay.connectors.mapping import default_mapping_path, lint_mapping_file, load_mapping_text
from memrelay.connectors.registry import connector_info, connector_names, validate_config
from memrelay.engine.core.errors import BadRequest, MemrelayError, NotFound, Unauthorized, ValidationFailed
from memrelay.engine.core.util import utcnow
from memrelay.engine.guidance.governance import GuidelineCreate, GuidelineFields, SmartGuidelinesRequest
from memrelay.engine.memory.digest import DigestRequest
from memrelay.engine.memory.recall import RecallRequest
from memrelay.engine.stores import console_reads
from memrelay.engine.stores.event_log import STATUSES, event_to_dict
from memrelay.engine.stores.identity import Identifiers
from memrelay.engine.stores.search import Condition, Group, SearchQuery, search_page
from memrelay.engine.stores.tenancy import KeyInfo
from memrelay.gateway.console import bp
from memrelay.gateway.console.present import (
    bar_chart,
    diff_lines,
    mask_secrets,
    parse_local_time,
    pretty,
    snapshot_text,
)
from memrelay.gateway.console.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_TTL_S,
    CsrfError,
    check_csrf,
    console_auth,
    create_session,
    destroy_session,
    flash,
    load_session,
    pop_flashes,
    set_cookie,
)
from memrelay.gateway.state import state
from memrelay.queue import redis_keys
from memrelay.queue.jobs import enqueue_each
from memrelay.queue.workers import STALE_AFTER_S

PAGE_SIZE = 50
QUEUES = ("events", "memorize", "deliver", "generate", "default")
MAX_REPLAY = 200


def _page(template: str, **ctx: Any) -> str:
    auth: KeyInfo | None = g.get("auth")
    sess = g.get("console_session")
    return render_template(f"console/{template}", auth=auth, csrf_token=sess.csrf if sess else "",
                           flashes=pop_flashes(), pretty=pretty, **ctx)


def _int(name: str, default: int, *, lo: int = 1, hi: int = 10**6) -> int:
    try:
        return min(max(int(request.args.get(name, default)), lo), hi)
    except ValueError:
        return default


def _safe_next(target: str | None) -> str:
    """Only a path inside the console (no scheme, no host, no ``//``) may be a post-sign-in target."""
    if target and target.startswith("/console") and not urlsplit(target).netloc and "\\" not in target:
        return target
    return url_for("console.events")


@bp.app_template_filter("console_value")
def _show(value: Any) -> str:
    """A property value as text: lists joined, objects as compact JSON, None as nothing."""
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


# --- errors and headers -------------------------------------------------------------------------------
@bp.errorhandler(MemrelayError)
def _error(exc: MemrelayError) -> Any:
    if isinstance(exc, Unauthorized) and request.method == "GET":
        return redirect(url_for("console.login"))
    body = _page("error.html", status=exc.http_status, code=exc.code, message=exc.message)
    resp = Response(body, status=exc.http_status, content_type="text/html; charset=utf-8")
    if getattr(exc, "retry_after", None):
        resp.headers["Retry-After"] = str(exc.retry_after)  # type: ignore[attr-defined]
    return resp


@bp.errorhandler(ValidationError)
def _invalid(exc: ValidationError) -> Any:
    message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])
    return _error(ValidationFailed(f"invalid input: {message}"))


@bp.errorhandler(redis.RedisError)
def _redis_down(exc: redis.RedisError) -> Response:
    """Sessions live in Redis: without it the console can only say so."""
    body = render_template("console/error.html", auth=None, csrf_token="", flashes=[], pretty=pretty, status=503,
                           code="queue_unavailable", message=f"Redis is unavailable ({exc.__class__.__name__}); "
                                                             "the console keeps its sessions there.")
    return Response(body, status=503, content_type="text/html; charset=utf-8")


@bp.after_request
def _headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                               "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; "
                                               "base-uri 'none'; object-src 'none'")
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    if not request.path.startswith("/console/static/"):
        resp.headers["Cache-Control"] = "no-store"
    return resp


# --- sign in / out ------------------------------------------------------------------------------------
@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Sign in with an API key (form POST with the double-submit CSRF cookie of this page)."""
    error = None
    status = 200
    if request.method == "POST":
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        try:
            check_csrf(cookie)
            key = (request.form.get("api_key") or "").strip()
            state().services.tenancy.authenticate(key)
        except CsrfError as exc:
            error, status = exc.message, 403
        except Unauthorized:
            error, status = "That API key is not valid (or was revoked).", 401
        else:
            destroy_session(load_session())
            sess = create_session(key)
            resp = redirect(_safe_next(request.form.get("next")))
            set_cookie(resp, SESSION_COOKIE, sess.sid, max_age=SESSION_TTL_S)
            resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
            return resp
    token = secrets.token_urlsafe(32)
    html = render_template("console/login.html", auth=None, csrf_token=token, flashes=[], error=error,
                           next=request.values.get("next", ""))
    resp = Response(html, status=status, content_type="text/html; charset=utf-8")
    set_cookie(resp, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return resp


@bp.post("/logout")
@console_auth("read")
def logout(auth: KeyInfo) -> Any:
    destroy_session(g.console_session)
    resp = redirect(url_for("console.login"))
    resp.delete_cookie(SESSION_COOKIE, path="/console")
    return resp


@bp.get("/")
@console_auth("read")
def home(auth: KeyInfo) -> Any:
    return redirect(url_for("console.events"))


# --- 1. inbound events --------------------------------------------------------------------------------
@bp.get("/events")
@console_auth("read")
def events(auth: KeyInfo) -> str:
    services = state().services
    status = request.args.get("status") or None
    if status not in (None, *STATUSES):
        raise BadRequest(f"status must be one of {list(STATUSES)}")
    f = console_reads.EventFilter(status=status, source_id=request.args.get("source") or None,
                                  event_type=request.args.get("type") or None,
                                  since=parse_local_time(request.args.get("since")),
                                  until=parse_local_time(request.args.get("until")))
    size = _int("size", PAGE_SIZE, hi=console_reads.MAX_EVENTS_PAGE)
    page_no = _int("page", 1)
    page = console_reads.events_page(services.db, auth.org_id, f, offset=(page_no - 1) * size, limit=size)
    pages = max(1, -(-page.total // size))
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return _page("events.html", page=page, page_no=page_no, pages=pages, size=size, args=args, f=f,
                 statuses=STATUSES, counts=services.events.counts(auth.org_id),
                 sources=services.sources.list(auth.org_id),
                 types=console_reads.event_types(services.db, auth.org_id),
                 since=request.args.get("since", ""), until=request.args.get("until", ""))


@bp.get("/events/<event_id>")
@console_auth("read")
def event(auth: KeyInfo, event_id: str) -> str:
    ev = state().services.events.get(auth.org_id, event_id)
    data = event_to_dict(ev, payload=True)
    payload = data.pop("payload") or {}
    stored = data.pop("headers")  # masked by EventLog.record before storage (verified ones say so)
    return _page("event.html", ev=data, payload=mask_secrets(payload), verification=data.pop("verification"),
                 headers=None if stored is None else sorted(stored.items(), key=lambda kv: (kv[0] == "…",
                                                                                            kv[0].lower())),
                 payload_headers=mask_secrets(payload.get("attributes", {}).get("headers") or {}))


@bp.post("/events/replay")
@console_auth("write")
def replay(auth: KeyInfo) -> Any:
    """Replay the ticked events (at most :data:`MAX_REPLAY` at once)."""
    st = state()
    ids = list(dict.fromkeys(request.form.getlist("event_id")))[:MAX_REPLAY]
    if not ids:
        flash("error", "Tick at least one event to replay.")
        return redirect(request.referrer if _same_origin_referrer() else url_for("console.events"))
    done, failed = [], []
    for event_id in ids:
        try:
            st.services.events.replay(auth.org_id, event_id)
            done.append(event_id)
        except (NotFound, BadRequest) as exc:
            failed.append(f"{event_id}: {exc.message}")
    enqueue_each(st.redis, "process_event", done)
    if done:
        flash("ok", f"Replaying {len(done)} event(s): " + ", ".join(done[:5]) + ("…" if len(done) > 5 else ""))
    for line in failed[:5]:
        flash("error", f"Not replayed — {line}")
    back = request.form.get("back") or ""
    return redirect(_safe_next(back) if back else url_for("console.events"))


def _same_origin_referrer() -> bool:
    ref = request.referrer or ""
    return ref.startswith(request.host_url.rstrip("/") + "/console")


# --- 2. records -----------------------------------------------------------------------------------------
KEY_KINDS = {"email": "Email", "website_url": "Website URL", "record_id": "Record id", "custom": "Custom key"}
OPERATORS = {"EQ": "equals", "NEQ": "not equals", "CONTAINS": "contains", "GT": ">", "LT": "<", "IS_SET": "is set"}


def _identifiers(kind: str, value: str, custom_name: str, entity_type: str | None) -> Identifiers:
    data: dict[str, Any] = {"type": entity_type or None}
    if kind == "custom":
        data.update(customKeyName=custom_name, customKeyValue=value)
    elif kind in KEY_KINDS:
        data[kind] = value
    try:
        return Identifiers.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("invalid identifier: " + exc.errors()[0]["msg"]) from None


@bp.get("/records")
@console_auth("read")
def records(auth: KeyInfo) -> str:
    services = state().services
    a = request.args
    kind, value = a.get("kind", "email"), (a.get("value") or "").strip()
    prop, op, pval = (a.get("prop") or "").strip(), a.get("op", "EQ"), (a.get("pval") or "").strip()
    etype = (a.get("type") or "").strip() or None
    ids = _identifiers(kind, value, (a.get("custom_name") or "").strip(), etype) if value else \
        Identifiers.model_validate({"type": etype})
    groups = []
    if prop:
        if op not in OPERATORS:
            raise BadRequest("unknown operator")
        groups = [Group(conditions=[Condition(property=prop, operator=op, value=None if op == "IS_SET" else pval)])]
    size = 25
    page_no = _int("page", 1, hi=400)
    q = SearchQuery(identifiers=ids, groups=groups, offset=(page_no - 1) * size, limit=size)
    with services.db.read() as s:
        found = search_page(s, services.collections, auth.org_id, q)
        items = services.records.render(s, found.rows)
    args = {k: v for k, v in a.items() if k != "page" and v}
    return _page("records.html", items=items, total=found.total, exact=found.total_is_exact, page_no=page_no,
                 pages=max(1, -(-found.total // size)), args=args, kinds=KEY_KINDS, operators=OPERATORS,
                 kind=kind, value=value, prop=prop, op=op, pval=pval, etype=etype or "",
                 custom_name=a.get("custom_name", ""))


@bp.get("/records/<record_id>")
@console_auth("read")
def record(auth: KeyInfo, record_id: str) -> str:
    services = state().services
    ids = Identifiers(record_id=record_id)
    rec = services.records.get(auth.org_id, ids)  # 404 unless the record is the caller org's and live
    superseded = request.args.get("superseded") == "1"
    with services.db.read() as s:
        memories = services.memories.list_for_record(s, rec["recordId"], include_superseded=superseded)
    hist_page = _int("hpage", 1, hi=1000)
    history = services.records.history(auth.org_id, ids, page=hist_page, page_size=25)
    try:
        digest: dict[str, Any] | None = services.digests.digest(auth.org_id, DigestRequest(identifiers=ids))
        digest_error = None
    except MemrelayError as exc:
        digest, digest_error = None, exc.message
    return _page("record.html", rec=rec, memories=memories, superseded=superseded, history=history,
                 hist_page=hist_page, digest=digest, digest_error=digest_error)


@bp.post("/records/<record_id>/delete")
@console_auth("write")
def record_delete(auth: KeyInfo, record_id: str) -> Any:
    out = state().services.records.soft_delete(auth.org_id, Identifiers(record_id=record_id), actor=auth.key_id)
    flash("ok", f"Record {record_id} soft-deleted; recoverable until {out.get('purgeAfter') or 'the retention end'}.")
    return redirect(url_for("console.records", deleted=record_id))


@bp.post("/records/cancel-deletion")
@console_auth("write")
def record_cancel_deletion(auth: KeyInfo) -> Any:
    record_id = (request.form.get("record_id") or "").strip()
    if not record_id:
        raise BadRequest("record_id is required")
    state().services.memories.cancel_deletion(auth.org_id, ids=Identifiers(record_id=record_id))
    flash("ok", f"Deletion of {record_id} cancelled.")
    return redirect(url_for("console.record", record_id=record_id))


@bp.post("/records/<record_id>/erase")
@console_auth("admin")
def record_erase(auth: KeyInfo, record_id: str) -> Any:
    if request.form.get("confirm") != record_id:
        raise BadRequest("type the record id to confirm erasure")
    services = state().services
    out = services.records.erase(auth.org_id, Identifiers(record_id=record_id), actor=auth.key_id)
    services.index.reconcile()
    flash("ok", f"Erased: {out['records']} record(s), {out['memories']} memories, {out['properties']} properties.")
    return redirect(url_for("console.records"))


# --- 3. recall playground -----------------------------------------------------------------------------
NO_MODEL = ("Deep mode needs an LLM and none is configured (set MEMRELAY_LLM_MODEL, and its API key, then restart "
            "memrelay). These are fast-mode results.")


@bp.route("/recall", methods=["GET", "POST"])
@console_auth("read")
def recall(auth: KeyInfo) -> str:
    """Recall playground. Fast mode by link (GET) or form; deep mode (billed LLM calls: reflection rounds and an
    answer) only from the form (POST, CSRF-checked), never by following a link."""
    a = request.form if request.method == "POST" else request.args
    query = (a.get("q") or "").strip()
    mode = "deep" if a.get("mode") == "deep" else "fast"
    recall_svc = state().services.recall
    llm_ready = recall_svc.deep is not None
    result, error, notice = None, None, None
    if query and mode == "deep" and request.method != "POST":
        error = "Deep mode calls the LLM (billed): run it from the form."
    elif query:
        body: dict[str, Any] = {"query": query, "limit": _int("limit", 10, hi=50) if request.method == "GET"
                                else _form_int(a.get("limit"), 10, hi=50),
                                "includeSuperseded": a.get("superseded") == "1", "explain": True, "mode": mode,
                                "generateAnswer": mode == "deep" and a.get("answer") == "1"}
        if a.get("type"):
            body["type"] = a["type"]
        if (a.get("value") or "").strip():
            body["identifiers"] = _identifiers(a.get("kind", "email"), a["value"].strip(),
                                               (a.get("custom_name") or "").strip(), None).model_dump(
                exclude_none=True, exclude_defaults=True)
        try:
            req = RecallRequest.model_validate(body)
            result = recall_svc.smart_recall(auth.org_id, req)
        except ValidationError as exc:
            error = "; ".join(e["msg"] for e in exc.errors()[:3])
        except MemrelayError as exc:
            error = f"{exc.code}: {exc.message}" if mode == "deep" else exc.message
        if result is not None and mode == "deep" and result.get("mode") != "deep":
            notice = NO_MODEL
    for it in (result or {}).get("results", []):
        it["recencyPart"] = round(it.get("score", 0.0) - it.get("similarity", 0.0), 6)
    cited = set(((result or {}).get("answer") or {}).get("citedMemoryIds") or [])
    return _page("recall.html", q=query, result=result, error=error, notice=notice, kinds=KEY_KINDS, a=a,
                 mode=mode, llm_ready=llm_ready, no_model=NO_MODEL, cited=cited,
                 answer_on=a.get("answer") == "1" if request.method == "POST" else True)


def _form_int(value: str | None, default: int, *, lo: int = 1, hi: int = 10**6) -> int:
    try:
        return min(max(int(value or default), lo), hi)
    except ValueError:
        return default


# --- 4. guidelines --------------------------------------------------------------------------------------
def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").replace("\n", ",").split(",") if t.strip()]


@bp.get("/guidelines")
@console_auth("read")
def guidelines(auth: KeyInfo) -> str:
    return _page("guidelines.html", guidelines=state().services.governance.list(auth.org_id))


@bp.post("/guidelines")
@console_auth("write")
def guideline_create(auth: KeyInfo) -> Any:
    f = request.form
    try:
        body = GuidelineCreate(name=f.get("name", ""), description=f.get("description", ""),
                               content=f.get("content", ""), tags=_split(f.get("tags")),
                               triggerKeywords=_split(f.get("keywords")))
    except ValidationError as exc:
        raise ValidationFailed("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors()[:3])) from None
    out = state().services.governance.create(auth.org_id, body, actor=auth.key_id)
    flash("ok", f"Guideline “{out['name']}” created.")
    return redirect(url_for("console.guideline", guideline_id=out["id"]))


@bp.get("/guidelines/<guideline_id>")
@console_auth("read")
def guideline(auth: KeyInfo, guideline_id: str) -> str:
    gov = state().services.governance
    gl = gov.get(auth.org_id, guideline_id)
    versions = gov.history(auth.org_id, guideline_id, mode="full")
    numbers = [v["version"] for v in versions]
    new = _int("to", numbers[-1] if numbers else 1)
    old = _int("from", max(new - 1, numbers[0] if numbers else 1))
    by_no = {v["version"]: v for v in versions}
    diff = []
    if old in by_no and new in by_no and old != new:
        diff = diff_lines(snapshot_text(by_no[old]), snapshot_text(by_no[new]), old_label=f"v{old}",
                          new_label=f"v{new}")
    return _page("guideline.html", gl=gl, versions=versions, diff=diff, old=old, new=new)


@bp.post("/guidelines/<guideline_id>")
@console_auth("write")
def guideline_update(auth: KeyInfo, guideline_id: str) -> Any:
    f = request.form
    try:
        body = GuidelineFields(name=f.get("name") or None, description=f.get("description", ""),
                               content=f.get("content", ""), tags=_split(f.get("tags")),
                               triggerKeywords=_split(f.get("keywords")))
    except ValidationError as exc:
        raise ValidationFailed("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors()[:3])) from None
    gov = state().services.governance
    before = gov.get(auth.org_id, guideline_id)["version"]
    out = gov.update(auth.org_id, guideline_id, body, actor=auth.key_id)
    if out["version"] == before:
        flash("ok", "No change: the guideline is the same as its current version.")
        return redirect(url_for("console.guideline", guideline_id=guideline_id))
    flash("ok", f"Saved as version {out['version']}.")
    return redirect(url_for("console.guideline", guideline_id=guideline_id, **{"from": before, "to": out["version"]}))


@bp.route("/routing", methods=["GET", "POST"])
@console_auth("read")
def routing(auth: KeyInfo) -> str:
    """Routing playground: which guidelines and sections a task gets, fast or deep."""
    result, error = None, None
    message, mode = "", "fast"
    if request.method == "POST":
        message, mode = (request.form.get("message") or "").strip(), request.form.get("mode", "fast")
        try:
            req = SmartGuidelinesRequest(message=message, mode="deep" if mode == "deep" else "fast",
                                         maxGuidelines=int(request.form.get("max", 5) or 5))
            result = state().services.governance.smart_guidelines(auth.org_id, req)
        except (ValidationError, ValueError) as exc:
            error = str(exc).splitlines()[0] if not isinstance(exc, ValidationError) else \
                "; ".join(e["msg"] for e in exc.errors()[:3])
        except MemrelayError as exc:
            error = f"{exc.code}: {exc.message}"
    return _page("routing.html", result=result, error=error, message=message, mode=mode)


# --- 5. outbound ------------------------------------------------------------------------------------------
@bp.get("/outbound")
@console_auth("read")
def outbound(auth: KeyInfo) -> str:
    svc = state().services.webhooks_out
    subs = svc.list(auth.org_id)
    sub_id = request.args.get("sub") or (subs[0]["id"] if subs else None)
    deliveries = None
    page_no = _int("page", 1)
    if sub_id:
        deliveries = svc.deliveries(auth.org_id, sub_id, page=page_no, page_size=25)
    return _page("outbound.html", subs=subs, sub_id=sub_id, deliveries=deliveries, page_no=page_no,
                 can_rotate=hasattr(svc, "rotate_secret"))


@bp.post("/outbound/<sub_id>/deliveries/<delivery_id>/redeliver")
@console_auth("admin")
def redeliver(auth: KeyInfo, sub_id: str, delivery_id: str) -> Any:
    st = state()
    st.services.webhooks_out.redeliver(auth.org_id, sub_id, delivery_id)
    enqueue_each(st.redis, "deliver", [delivery_id])
    flash("ok", f"Delivery {delivery_id} queued for redelivery.")
    return redirect(url_for("console.outbound", sub=sub_id))


@bp.post("/outbound/<sub_id>/rotate-secret")
@console_auth("admin")
def rotate_secret(auth: KeyInfo, sub_id: str) -> Any:
    svc = state().services.webhooks_out
    rotate = getattr(svc, "rotate_secret", None)
    if rotate is None:
        raise BadRequest("this memrelay cannot rotate outbound secrets")
    out = rotate(auth.org_id, sub_id)
    flash("secret", f"New signing secret for {sub_id} (shown once): {out['secret']}")
    return redirect(url_for("console.outbound", sub=sub_id))


# --- 6. usage and health ----------------------------------------------------------------------------------
@bp.get("/usage")
@console_auth("admin")
def usage(auth: KeyInfo) -> str:
    from memrelay.engine.stores.usage_store import org_budget_limit
    from memrelay.gateway.blueprints.health import readiness_checks

    st = state()
    services, settings = st.services, st.settings
    days = _int("days", 30, hi=366)
    since = (utcnow() - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = console_reads.usage_by_day_and_model(services.db, auth.org_id, since)
    per_day: dict[str, dict[str, float]] = {}
    for i in range(days):
        per_day[(since + timedelta(days=i)).date().isoformat()] = {"tokens": 0.0, "cost": 0.0}
    for r in rows:
        d = per_day.setdefault(r["day"], {"tokens": 0.0, "cost": 0.0})
        d["tokens"] += r["totalTokens"]
        d["cost"] += r["costUsd"]
    models: dict[str, dict[str, float]] = {}
    for r in rows:
        m = models.setdefault(r["model"], {"calls": 0, "tokens": 0, "cost": 0.0})
        m["calls"] += r["calls"]
        m["tokens"] += r["totalTokens"]
        m["cost"] += r["costUsd"]
    store = services.llm.store
    window = int(time.time() // 60)
    limit = auth.rate_limit_per_minute or settings.rate_limit_per_minute
    queues: list[dict[str, Any]] = []
    workers: list[dict[str, Any]] = []
    redis_error: str | None = None
    try:
        used = int(cast("bytes | None", st.redis.get(redis_keys.rate_limit(auth.key_id, window))) or 0)
        for name in QUEUES:
            qq = Queue(name, connection=st.redis)
            queues.append({"name": name, "queued": qq.count,
                           "started": StartedJobRegistry(queue=qq).count,
                           "failed": FailedJobRegistry(queue=qq).count})
        now = utcnow()
        for w in Worker.all(connection=st.redis):
            beat = w.last_heartbeat
            age = (now - beat.replace(tzinfo=now.tzinfo)).total_seconds() if beat else None
            workers.append({"name": w.name, "state": w.get_state(), "queues": ",".join(w.queue_names()),
                            "beatAgeS": round(age, 1) if age is not None else None,
                            "alive": age is not None and age <= STALE_AFTER_S})
    except redis.RedisError as exc:
        used, redis_error = 0, f"{exc.__class__.__name__}: {exc}"
    checks = readiness_checks()
    index: dict[str, Any] = {"collection": None, "memories": None, "pendingIndexWrites": None, "error": None}
    try:
        index["memories"] = services.index.count_memories(auth.org_id)
        index["pendingIndexWrites"] = len(services.index.pending_ids(org_id=auth.org_id, limit=1000))
        index["collection"] = services.index.current_collection()
    except Exception as exc:  # the page reports index trouble instead of failing
        index["error"] = f"{exc.__class__.__name__}: {exc}"
    day_points = [(d, v["tokens"]) for d, v in per_day.items()]
    cost_points = [(d, round(v["cost"], 6)) for d, v in per_day.items()]
    return _page("usage.html", rows=rows, models=models, days=days,
                 tokens_chart=bar_chart(day_points, title=f"LLM tokens per day, last {days} days"),
                 cost_chart=bar_chart(cost_points, title=f"LLM cost per day (USD), last {days} days", unit=" USD"),
                 queue_chart=bar_chart([(str(q["name"]), float(q["queued"])) for q in queues], title="Jobs queued per queue"),
                 by_feature=store.summary(auth.org_id), spent=store.spent_usd(auth.org_id),
                 budget=org_budget_limit(services.db, auth.org_id, settings.llm_monthly_budget_usd),
                 rate={"limit": limit, "used": used, "resetS": int((window + 1) * 60 - time.time())},
                 queues=queues, workers=workers, redis_error=redis_error, checks=checks, index=index,
                 stale_after=STALE_AFTER_S)


# --- 7. sources -------------------------------------------------------------------------------------------
TEST_BODIES: dict[str, dict[str, Any]] = {
    "generic": {"object_type": "contact", "email": "console-test@example.com", "first_name": "Console",
                "last_name": "Test"},
    "form": {"email": "console-test@example.com", "name": "Console Test", "message": "test delivery"},
    "generic_hmac": {"email": "console-test@example.com", "name": "Console Test", "message": "test delivery"},
}


def _lint(src: dict[str, Any], mapping_yaml: str | None) -> list[dict[str, Any]]:
    if mapping_yaml:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "mapping.yaml"
            path.write_text(mapping_yaml, encoding="utf-8")
            problems = lint_mapping_file(path)
        return [{**p.to_dict(), "path": "custom mapping"} for p in problems]
    try:
        path = default_mapping_path(src["connector"])
    except NotFound:
        return []
    return [{**p.to_dict(), "path": f"default mapping ({path.parent.name}/{path.name})"}
            for p in lint_mapping_file(path)]


@bp.get("/sources")
@console_auth("read")
def sources(auth: KeyInfo) -> str:
    svc = state().services.sources
    rows = svc.list(auth.org_id)
    base = request.host_url.rstrip("/")
    for src in rows:
        src["webhookUrl"] = base + src["webhookPath"]
        src["lint"] = _lint(src, svc.get(auth.org_id, src["id"]).mapping_yaml)
        src["testable"] = src["connector"] in TEST_BODIES
        src["usesToken"] = connector_info(src["connector"]).uses_token
    return _page("sources.html", sources=rows, connectors=connector_names())


@bp.post("/sources")
@console_auth("admin")
def source_create(auth: KeyInfo) -> Any:
    f = request.form
    connector = f.get("connector", "")
    if connector not in connector_names():
        raise ValidationFailed(f"unknown connector {connector!r}")
    try:
        config = json.loads(f.get("config") or "{}")
    except ValueError:
        raise ValidationFailed("config must be a JSON object") from None
    if not isinstance(config, dict):
        raise ValidationFailed("config must be a JSON object")
    validate_config(connector, config)
    mapping = (f.get("mapping") or "").strip() or None
    if mapping:
        load_mapping_text(mapping, path="mapping")
    out = state().services.sources.create(auth.org_id, connector=connector, name=f.get("name", ""),
                                          secret=(f.get("secret") or None), config=config, mapping_yaml=mapping)
    url = request.host_url.rstrip("/") + out["webhookPath"]
    flash("secret", f"Source {out['id']} created. Its webhook URL (with its token; shown once): {url}")
    return redirect(url_for("console.sources"))


@bp.post("/sources/<source_id>/rotate-token")
@console_auth("admin")
def source_rotate(auth: KeyInfo, source_id: str) -> Any:
    out = state().services.sources.rotate_token(auth.org_id, source_id)
    flash("secret", "New webhook URL (shown once): " + request.host_url.rstrip("/") + out["webhookPath"])
    return redirect(url_for("console.sources"))


@bp.post("/sources/<source_id>/test")
@console_auth("admin")
def source_test(auth: KeyInfo, source_id: str) -> Any:
    """Send a sample delivery through the real receiver (in process, through the WSGI app), as a provider
    would: tokened path for token connectors, a fresh signature for ``generic_hmac``."""
    from flask import current_app

    svc = state().services.sources
    src = svc.reveal(auth.org_id, source_id)
    if src["connector"] not in TEST_BODIES:
        raise BadRequest(f"test deliveries are not available for {src['connector']} sources: send one from the "
                         "provider's dashboard")
    body = dict(TEST_BODIES[src["connector"]], event_id=f"console-test-{secrets.token_hex(6)}")
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if src["connector"] == "generic_hmac":
        ts = str(int(time.time()))
        sig = hmac.new((src.get("secret") or "").encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
        headers["X-Signature"] = f"t={ts},v1={sig}"
    with current_app.test_client() as client:
        resp = client.post(src["webhookPath"], data=raw, headers=headers,
                           environ_base={"REMOTE_ADDR": request.remote_addr or "127.0.0.1"})
    try:
        answer = resp.get_json(silent=True)
    finally:
        resp.close()
    if resp.status_code < 300:
        flash("ok", f"Test delivery accepted ({resp.status_code}): {json.dumps(answer)[:300]}")
    else:
        flash("error", f"Test delivery refused ({resp.status_code}): {json.dumps(answer)[:300]}")
    return redirect(url_for("console.sources"))
