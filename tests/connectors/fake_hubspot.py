"""A local HubSpot CRM v3 server (stdlib http.server in a thread) for the real hubspot-api-client.

Implements, for contacts/companies/deals/tickets: ``POST /crm/v3/objects/<type>/batch/read``,
``POST /crm/v3/objects/<type>/search`` (``GTE`` filters, one ascending sort, ``after`` offsets) and
``GET /crm/v3/objects/<type>`` (list by id with ``after``). Bearer-token auth. ``throttle(n)`` answers the
next n requests with 429 + ``Retry-After``; ``fail`` injects an error status for matching requests.
Every request is recorded in ``requests`` as ``(method, path, query, body)``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TYPES = ("contacts", "companies", "deals", "tickets")
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(value: str) -> int:
    if value.isdigit():
        return int(value)
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def make_contacts(n: int, *, start: int = 1, base: datetime = BASE_TIME,
                  companies: int | None = None) -> list[dict[str, Any]]:
    """Contacts with ids start.., one minute apart in ``lastmodifieddate``; with ``companies`` k, their email
    domains (and so their company website keys) repeat every k contacts."""
    out = []
    for i in range(start, start + n):
        modified = base + timedelta(minutes=i)
        out.append({"id": str(i), "createdAt": iso(base), "updatedAt": iso(modified), "archived": False,
                    "properties": {"email": f"person{i}@corp{i % companies if companies else i}.example",
                                   "firstname": f"First{i}", "lastname": f"Last{i}", "jobtitle": f"Engineer {i}",
                                   "company": f"Corp {i % companies if companies else i}",
                                   "lifecyclestage": "lead", "city": "Austin",
                                   "lastmodifieddate": iso(modified), "hs_object_id": str(i)}})
    return out


class FakeHubSpot:
    def __init__(self, token: str = "test-token", **objects: list[dict[str, Any]]):
        self.token = token
        self.objects: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TYPES}
        for kind, items in objects.items():
            self.add(kind, items)
        self.requests: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self.retry_after: str | None = "1"
        self.throttle_policy = "SECONDLY"
        self.fail: Callable[[str, str, dict[str, list[str]], Any], int | None] | None = None
        self._throttle = 0
        self.search_cap = 10_000
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- control ------------------------------------------------------------------------------------

    def add(self, kind: str, items: list[dict[str, Any]]) -> None:
        for item in items:
            self.objects[kind][str(item["id"])] = item

    def throttle(self, n: int = 1) -> None:
        self._throttle = n

    def calls(self, method: str, path_suffix: str) -> list[tuple[str, str, dict[str, list[str]], Any]]:
        return [r for r in self.requests if r[0] == method and r[1].endswith(path_suffix)]

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeHubSpot:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- protocol -----------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        query = parse_qs(parts.query)
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length)) if length else None
        with self._lock:
            self.requests.append((method, parts.path, query, body))
            throttled = self._throttle > 0
            self._throttle -= 1 if throttled else 0
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(h, 401, {"status": "error", "category": "INVALID_AUTHENTICATION"})
        if throttled:
            return self._send(h, 429, {"status": "error", "errorType": "RATE_LIMIT",
                                       "policyName": self.throttle_policy, "message": "You have reached your limit."},
                              {"Retry-After": self.retry_after} if self.retry_after is not None else {})
        if self.fail is not None and (status := self.fail(method, parts.path, query, body)):
            return self._send(h, status, {"status": "error", "message": "injected failure"})
        segments = parts.path.strip("/").split("/")
        if segments[:3] != ["crm", "v3", "objects"] or len(segments) < 4 or segments[3] not in TYPES:
            return self._send(h, 404, {"status": "error", "message": "not found"})
        kind, action = segments[3], "/".join(segments[4:])
        if method == "POST" and action == "batch/read":
            return self._send(h, 200, self._batch_read(kind, body))
        if method == "POST" and action == "search":
            return self._send(h, 200, self._search(kind, body))
        if method == "GET" and action == "":
            return self._send(h, 200, self._list(kind, query))
        return self._send(h, 404, {"status": "error", "message": "not found"})

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json;charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _view(obj: dict[str, Any], properties: list[str]) -> dict[str, Any]:
        wanted = set(properties) | {"hs_object_id", "createdate", "lastmodifieddate"}
        props = {k: v for k, v in obj["properties"].items() if k in wanted}
        return {**obj, "properties": props}

    def _batch_read(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        ids = [i["id"] for i in body["inputs"]]
        if len(ids) > 100:
            raise AssertionError("batch read with more than 100 inputs")
        found = [self._view(self.objects[kind][i], body.get("properties") or []) for i in ids
                 if i in self.objects[kind]]
        now = iso(datetime.now(UTC))
        return {"status": "COMPLETE", "results": found, "startedAt": now, "completedAt": now}

    def _search(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        items = list(self.objects[kind].values())
        for group in body.get("filterGroups") or []:
            for f in group.get("filters") or []:
                assert f["operator"] == "GTE", f
                items = [o for o in items if (v := o["properties"].get(f["propertyName"]))
                         and _ms(v) >= _ms(f["value"])]
        for sort in body.get("sorts") or []:
            name = sort["propertyName"] if isinstance(sort, dict) else sort
            items.sort(key=lambda o, n=name: (_ms(o["properties"].get(n) or "0"), int(o["id"])))
        offset, limit = int(body.get("after") or 0), int(body.get("limit") or 10)
        if offset + limit > self.search_cap:
            raise AssertionError(f"search past {self.search_cap} results")
        page = items[offset:offset + limit]
        out: dict[str, Any] = {"total": len(items), "results": [self._view(o, body.get("properties") or [])
                                                                for o in page]}
        if offset + limit < len(items):
            out["paging"] = {"next": {"after": str(offset + limit)}}
        return out

    def _list(self, kind: str, query: dict[str, list[str]]) -> dict[str, Any]:
        limit = int(query.get("limit", ["10"])[0])
        after = int(query.get("after", ["0"])[0])
        properties = [p for value in query.get("properties", []) for p in value.split(",")]
        items = sorted((o for o in self.objects[kind].values() if int(o["id"]) >= after), key=lambda o: int(o["id"]))
        out: dict[str, Any] = {"results": [self._view(o, properties) for o in items[:limit]]}
        if len(items) > limit:
            nxt = items[limit]["id"]
            out["paging"] = {"next": {"after": nxt, "link": f"{self.url}/crm/v3/objects/{kind}?after={nxt}"}}
        return out
