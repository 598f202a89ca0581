"""Bad client input answers 4xx in the error shape and stores nothing — never a 500 (issue 17, item 6)."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from typing import Any

import pytest
import sqlalchemy as sa

from memrelay.engine.core.emails import clean_email, email_problem
from memrelay.engine.stores.search import MAX_IN_VALUES

TABLES = ("records", "record_keys", "property_values", "property_history", "collections", "sources")


def _stored(engine, org_id: str) -> dict[str, int]:
    with engine.db.engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t} WHERE org_id = :o"), {"o": org_id}).scalar_one()
                for t in TABLES}


def _refused(resp: Any, *statuses: int) -> dict[str, Any]:
    assert resp.status_code in statuses, (resp.status_code, resp.get_data(as_text=True)[:400])
    body = resp.get_json()
    assert body["success"] is False and body["error"]["code"] and body["error"]["message"], body
    return body["error"]


def _raw(api, path: str, data: bytes | str, ctype: str = "application/json", **kw: Any) -> Any:
    return api.client.post(path, data=data, headers={"Authorization": f"Bearer {api.key}", "Content-Type": ctype},
                           **kw)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


@pytest.fixture
def typed(api):
    """An org with a typed collection (number, date, text) and one stored contact."""
    r = api.post("/api/v1/collections", json={"collectionName": "Typed", "entityType": "contact", "properties": [
        {"propertyName": "score", "type": "number"}, {"propertyName": "seen", "type": "date"},
        {"propertyName": "notes", "type": "text"}, {"propertyName": "labels", "type": "array"}]})
    assert r.status_code in (200, 201), r.json
    assert api.post("/api/v1/upsert", json={"email": "kept@acme.io", "properties": {"first_name": "Kept"}}).status_code == 200
    return api


# --- request parsing -------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [
    "[" * 10_000 + "]" * 10_000,                                            # RecursionError in the parser
    '{"email": "d@acme.io", "properties": ' + '{"a": ' * 100 + "1" + "}" * 101,   # parses, but too deep
    '{"email": "a\\ud800b@acme.io", "properties": {"first_name": "x"}}',   # lone surrogate
    '{"email": "s@acme.io", "properties": {"\\udfff": "x"}}',               # ... in a key
    '{"email": "n@acme.io", "properties": {"score": ' + "9" * 400 + "}}",  # 400-digit number
    '{"email": "n@acme.io", "properties": {"score": NaN}}',
    '{"email": "n@acme.io", "properties": {"score": -Infinity}}',
    '{"groups": [], "page": 9223372036854775808}',                          # page >= 2^63
])
def test_unparseable_or_unbounded_json_is_a_400(typed, engine, raw):
    before = _stored(engine, typed.org_id)
    for path in ("/api/v1/upsert", "/api/v1/search"):
        _refused(_raw(typed, path, raw), 400)
    assert _stored(engine, typed.org_id) == before


def test_nested_json_within_the_limit_still_works(typed):
    nested: Any = "deep"
    for _ in range(40):
        nested = {"n": nested}
    r = typed.post("/api/v1/memorize", json={"email": "kept@acme.io", "content": "Kept likes depth.",
                                             "metadata": nested})
    assert r.status_code != 500 and r.status_code < 500, r.get_data(as_text=True)[:300]


def test_webhook_bodies_are_bounded_too(api, engine):
    src = api.post("/api/v1/sources", json={"connector": "generic", "secret": "s3cret-s3cret"}).json["data"]
    before = _stored(engine, api.org_id)
    r = api.client.post(src["webhookPath"], data="[" * 10_000 + "]" * 10_000,
                        headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.get_data(as_text=True)[:300]
    assert _stored(engine, api.org_id) == before


def test_form_body_with_undecodable_bytes_in_an_email_is_refused(typed, engine):
    before = _stored(engine, typed.org_id)
    r = _raw(typed, "/api/v1/upsert", "email=a%ED%A0%80b%40acme.io&type=contact",
             ctype="application/x-www-form-urlencoded")
    _refused(r, 400, 422)
    assert _stored(engine, typed.org_id) == before


# --- identifiers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    {"email": "a" * 600 + "@acme.io"},
    {"email": "ana@" + "b" * 300 + ".io"},
    {"email": "x" * 1_000_000 + "@acme.io"},                     # a 1 MB email
    {"type": "contact", "customKeyName": "crm", "customKeyValue": "v" * 513},
    {"type": "contact", "customKeyName": "k" * 600, "customKeyValue": "v"},
    {"type": "contact", "customKeys": {"crm": "v" * 600}},
    {"type": "company", "website_url": "https://" + "w" * 600 + ".com"},
    {"identifiers": [1], "content": "x"},
    {"email": "not-an-email"},
    {"email": "two@@acme.io"},
    {"email": "ana @acme.io"},
    {"email": "p\u0430ypal@acme.io"},                              # Cyrillic 'а' among Latin letters
    {"email": "ana@\u0430cme.io"},
])
def test_bad_identifiers_are_refused_and_nothing_is_stored(typed, engine, body):
    before = _stored(engine, typed.org_id)
    for path in ("/api/v1/upsert", "/api/v1/memorize", "/api/v1/memory/bulk-update"):
        payload = {"properties": {"first_name": "X"}, "content": "X met us.", **body}
        _refused(typed.post(path, json=payload), 400, 422)
    _refused(typed.post("/api/v1/recall", json={"type": body.get("type", "contact"), **body}), 400, 404, 422)
    assert _stored(engine, typed.org_id) == before


def test_an_identifier_at_the_limit_can_be_written_again_and_again(typed):
    body = {"type": "contact", "customKeyName": "crm", "customKeyValue": "v" * 400,
            "properties": {"first_name": "Long"}}
    first = typed.post("/api/v1/upsert", json=body)
    assert first.status_code == 200, first.json
    again = typed.post("/api/v1/upsert", json={**body, "properties": {"first_name": "Longer"}})
    assert again.status_code == 200, again.json
    assert again.json["data"]["recordId"] == first.json["data"]["recordId"]


@pytest.mark.parametrize("variant", [
    "ANA@ACME.IO", " ana@acme.io ", "ana@acme.io.", "an\u200ba@acme.io", "\ufeffana@acme.io",
    "\uff41\uff4e\uff41@\uff41\uff43\uff4d\uff45.io",  # fullwidth
])
def test_email_variants_name_one_record(typed, variant):
    first = typed.post("/api/v1/upsert", json={"email": "ana@acme.io", "properties": {"first_name": "Ana"}})
    other = typed.post("/api/v1/upsert", json={"email": variant, "properties": {"last_name": "Lopez"}})
    assert other.status_code == 200, other.json
    assert other.json["data"]["recordId"] == first.json["data"]["recordId"]


def test_email_rule():
    assert clean_email("  Ana\u200d@Acme.IO. ") == "ana@acme.io"
    assert email_problem("ana@acme.io") is None
    assert email_problem("jos\u00e9@b\u00fccher.de") is None  # internationalised, one script
    assert email_problem("not-an-email") and email_problem("a@-acme.io") and email_problem("@acme.io")


# --- typed property values -------------------------------------------------------------------------
@pytest.mark.parametrize("props", [
    {"score": 1e22},                    # a finite float beyond the number bound
    {"score": "-1e25"},
    {"score": "9" * 400},               # as text
    {"score": 1e300},
    {"seen": 1e20},                     # epoch out of range
    {"seen": -1e20},
    {"seen": "9" * 100},
    {"notes": "x" * 4_900_000},         # 4.9 MB value
    {"labels": ["x"] * 5_000},
    {"labels": ["y" * 70_000]},
])
def test_out_of_range_property_values_are_a_422(typed, engine, props):
    before = _stored(engine, typed.org_id)
    for body in ({"email": "new@acme.io", "properties": props}, {"email": "kept@acme.io", "properties": props}):
        _refused(typed.post("/api/v1/upsert", json=body), 413, 422)
    assert _stored(engine, typed.org_id) == before


def test_a_future_source_timestamp_is_clamped_so_later_writes_still_apply(typed):
    far = typed.post("/api/v1/upsert", json={"email": "kept@acme.io", "properties": {"first_name": "Future"},
                                             "sourceTimestamp": "9999-12-31T23:59:59Z"})
    assert far.status_code == 200, far.json
    later = typed.post("/api/v1/upsert", json={"email": "kept@acme.io", "properties": {"first_name": "Now"}})
    assert later.status_code == 200
    rec = typed.post("/api/v1/recall", json={"type": "contact", "email": "kept@acme.io"}).json["data"]
    assert rec["properties"]["first_name"]["value"] == "Now"
    hist = typed.post("/api/v1/memory/property-history", json={"email": "kept@acme.io",
                                                                "propertyName": "first_name"}).json["data"]
    assert "9999" not in json.dumps(hist)


# --- paging and query size -------------------------------------------------------------------------
@pytest.mark.parametrize("path,body", [
    ("/api/v1/search", {"groups": [], "page": 2**62}),
    ("/api/v1/search", {"groups": [], "page": 10**7, "pageSize": 500}),
    ("/api/v1/memory/filter-by-property", {"conditions": [], "nextToken": _token(10**19)}),
    ("/api/v1/memory/filter-by-property", {"conditions": [], "nextToken": _token(2_000_000)}),
    ("/api/v1/memory/filter-by-property", {"conditions": [], "nextToken": "eyJvIjogMWU0MDB9"}),  # {"o": 1e400}
    ("/api/v1/memory/property-history", {"email": "kept@acme.io", "page": 2**62}),
    ("/api/v1/memory/property-history", {"email": "kept@acme.io", "nextToken": _token(10**19)}),
    ("/api/v1/search", {"groups": [{"conditions": [
        {"property": "first_name", "operator": "IN", "value": [str(i) for i in range(5_000)]}]}]}),
    ("/api/v1/search", {"groups": [{"conditions": [
        {"property": "email", "operator": "IN", "value": [f"u{i}@acme.io" for i in range(MAX_IN_VALUES + 1)]}]}]}),
    ("/api/v1/memory/filter-by-property", {"conditions": [
        {"propertyName": "first_name", "operator": "in", "value": [str(i) for i in range(5_000)]}]}),
    ("/api/v1/search", {"logic": "OR", "groups": [
        {"conditions": [{"property": "first_name", "operator": "EQ", "value": str(i)}]} for i in range(600)]}),
])
def test_unbounded_pages_and_queries_are_a_4xx(typed, path, body):
    _refused(typed.post(path, json=body), 400, 422)


def test_the_largest_allowed_in_list_runs(typed):
    r = typed.post("/api/v1/search", json={"groups": [{"conditions": [
        {"property": "first_name", "operator": "IN", "value": ["Kept", *[str(i) for i in range(MAX_IN_VALUES - 1)]]}]}]})
    assert r.status_code == 200, r.json
    assert r.json["data"]["totalMatched"] == 1


# --- other shapes ----------------------------------------------------------------------------------
def test_job_id_with_a_dot_is_a_404(api):
    _refused(api.get("/api/v1/jobs/a.b"), 404)


def test_mapping_with_a_control_character_is_a_422(api, engine):
    before = _stored(engine, api.org_id)
    _refused(api.post("/api/v1/sources", json={"connector": "generic", "mapping": "a: \x01b"}), 422)
    assert _stored(engine, api.org_id) == before


def test_renaming_a_collection_onto_an_existing_name_is_a_409(api):
    one = api.post("/api/v1/collections", json={"collectionName": "One"}).json["data"]["collectionId"]
    assert api.post("/api/v1/collections", json={"collectionName": "Two"}).status_code in (200, 201)
    _refused(api.put(f"/api/v1/collections/{one}", json={"collectionName": "Two"}), 409, 422)
    assert api.get(f"/api/v1/collections/{one}").json["data"]["collectionName"] == "One"


@pytest.mark.parametrize("path", ["/api/v1/memorize", "/api/v1/smart-recall", "/api/v1/similar",
                                  "/api/v1/smart-memory-digest", "/api/v1.1/memory/save"])
def test_identifiers_of_the_wrong_type_are_a_4xx(typed, engine, path):
    before = _stored(engine, typed.org_id)
    _refused(typed.post(path, json={"identifiers": [1], "content": "x", "type": "contact"}), 400, 422)
    assert _stored(engine, typed.org_id) == before


# --- body size -------------------------------------------------------------------------------------
def _chunked(api, body: bytes) -> Any:
    """A body sent the way gunicorn hands over a chunked request: no Content-Length, input terminated."""
    return api.client.post("/api/v1/upsert", input_stream=io.BytesIO(body),
                           headers={"Authorization": f"Bearer {api.key}", "Content-Type": "application/json",
                                    "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})


def test_chunked_body_over_the_limit_is_a_413_not_truncated(typed, engine, settings):
    # a JSON array padded with spaces: a truncated prefix would still be a valid-looking start
    body = json.dumps({"email": "chunk@acme.io", "properties": {"first_name": "Chunk"}}).encode()
    padded = body + b" " * (settings.max_request_bytes - len(body) + 1)
    before = _stored(engine, typed.org_id)
    err = _refused(_chunked(typed, padded), 413)
    assert err["code"] == "payload_too_large"
    assert _stored(engine, typed.org_id) == before


def test_chunked_body_within_the_limit_is_read_whole(typed):
    r = _chunked(typed, json.dumps({"email": "chunk@acme.io", "properties": {"first_name": "Chunk"}}).encode())
    assert r.status_code == 200, r.json


# --- files ----------------------------------------------------------------------------------------
def test_data_files_are_private(tmp_path):
    from memrelay.engine.core.settings import Settings

    s = Settings(data_dir=tmp_path / "fresh")
    s.ensure_data_dir()
    assert stat.S_IMODE(os.stat(s.data_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(s.data_dir / "memrelay.db").st_mode) == 0o600


def test_admin_key_file_is_private(engine, settings):
    from memrelay.supervise.supervisor import ensure_admin_key

    with engine.db.engine.begin() as conn:  # a first start: no key yet
        conn.execute(sa.text("DELETE FROM api_keys"))
    path = ensure_admin_key(engine, settings)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
