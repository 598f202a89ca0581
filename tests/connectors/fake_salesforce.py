"""A local Salesforce REST server over HTTPS (simple-salesforce always uses https) for the real client.

Implements ``GET /services/data/vXX.X/query?q=SOQL`` (the small SOQL subset memrelay sends: a field list,
``WHERE LastModifiedDate >= <datetime>`` or ``WHERE Id IN (...)``, ``ORDER BY LastModifiedDate, Id``) with
``nextRecordsUrl`` paging honouring ``Sforce-Query-Options: batchSize``; ``sobjects/<Object>/describe``
and ``sobjects/<Object>/<Id>``; Bulk API 2.0 query jobs (create, status, CSV results with locators).
Every response carries ``Sforce-Limit-Info``. TLS uses a throwaway self-signed certificate:
pass ``fake.ca_bundle`` as the source's ``ca_bundle`` option.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
import ssl
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VERSION = "59.0"
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
_SOQL = re.compile(r"^SELECT (?P<fields>.+?) FROM (?P<obj>\w+)(?: WHERE (?P<where>.+?))?"
                   r"(?: ORDER BY (?P<order>.+))?$", re.S)


def sf_time(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("+0000", "+00:00"))


def make_contacts(n: int, *, base: datetime = BASE_TIME, same_time_every: int = 0,
                  companies: int = 7) -> list[dict[str, Any]]:
    """Contacts 003...; with ``same_time_every`` k, runs of k records share one LastModifiedDate; email
    domains repeat every ``companies`` contacts (colleagues)."""
    out = []
    for i in range(1, n + 1):
        step = (i - 1) // same_time_every if same_time_every else i
        out.append({"Id": f"003{i:015d}", "FirstName": f"First{i}", "LastName": f"Last{i}",
                    "Email": f"person{i}@corp{i % companies}.example", "Title": f"Engineer {i}", "Department": "R&D",
                    "MailingCity": "Austin", "LastModifiedDate": sf_time(base + timedelta(minutes=step))})
    return out


def write_self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "fake-sf.pem", directory / "fake-sf.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class FakeSalesforce:
    def __init__(self, tls_dir: Path, token: str = "sf-session", **objects: list[dict[str, Any]]):
        self.token = token
        self.objects: dict[str, list[dict[str, Any]]] = {k: list(v) for k, v in objects.items()}
        self.extra_fields = {"Contact": ["AccountId", "Phone", "MobilePhone", "LeadSource", "MailingCountry"]}
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.api_used, self.api_max = 100, 15000
        self.fail_query_call: int | None = None
        self._cursors: dict[str, tuple[list[dict[str, Any]], int]] = {}
        self._jobs: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.ca_bundle, key = write_self_signed(tls_dir)
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.load_cert_chain(self.ca_bundle, key)
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def options(self, **extra: Any) -> dict[str, Any]:
        return {"instance_url": self.url, "access_token": self.token, "ca_bundle": str(self.ca_bundle), **extra}

    def queries(self) -> list[str]:
        return [q["q"][0] for _, p, q in self.requests if p.rstrip("/").endswith("/query") and "q" in q]

    def start(self) -> FakeSalesforce:
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
        self._server.socket = self._ctx.wrap_socket(self._server.socket, server_side=True)
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
            self.requests.append((method, parts.path, query))
            self.api_used += 1
            n_queries = sum(1 for m, p, _ in self.requests if "/query" in p and "/jobs/" not in p)
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._json(h, 401, [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired"}])
        prefix = f"/services/data/v{VERSION}/"
        if not parts.path.startswith(prefix):
            return self._json(h, 404, [{"errorCode": "NOT_FOUND", "message": "bad version"}])
        rest = parts.path[len(prefix):].strip("/")
        if rest.startswith("query") and self.fail_query_call == n_queries:
            return self._json(h, 503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "injected"}])
        if rest == "query":
            batch = re.search(r"batchSize=(\d+)", h.headers.get("Sforce-Query-Options", ""))
            return self._json(h, 200, self._query(query["q"][0], int(batch.group(1)) if batch else 2000))
        if rest.startswith("query/"):
            return self._json(h, 200, self._more(rest.split("/", 1)[1]))
        if rest.startswith("sobjects/"):
            return self._sobjects(h, rest.split("/")[1:])
        if rest.startswith("jobs/query"):
            return self._bulk(h, method, rest.split("/")[2:], body, query)
        return self._json(h, 404, [{"errorCode": "NOT_FOUND", "message": rest}])

    def _send(self, h: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Sforce-Limit-Info", f"api-usage={self.api_used}/{self.api_max}")
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(data)

    def _json(self, h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        self._send(h, status, json.dumps(payload).encode(), "application/json;charset=UTF-8")

    def _select(self, soql: str) -> tuple[str, list[str], list[dict[str, Any]]]:
        m = _SOQL.match(" ".join(soql.split()))
        if m is None:
            raise AssertionError(f"unsupported SOQL: {soql}")
        obj, fields = m["obj"], [f.strip() for f in m["fields"].split(",")]
        rows = list(self.objects.get(obj, []))
        where = m["where"] or ""
        if ts := re.fullmatch(r"LastModifiedDate >= (\S+)", where):
            rows = [r for r in rows if _parse(r["LastModifiedDate"]) >= _parse(ts.group(1))]
        elif ids := re.fullmatch(r"Id IN \((.*)\)", where):
            wanted = set(re.findall(r"'([^']*)'", ids.group(1)))
            rows = [r for r in rows if r["Id"] in wanted]
        elif where:
            raise AssertionError(f"unsupported WHERE: {where}")
        if m["order"]:
            assert m["order"] == "LastModifiedDate, Id", m["order"]
            rows.sort(key=lambda r: (_parse(r["LastModifiedDate"]), r["Id"]))
        return obj, fields, [{f: r.get(f) for f in fields} for r in rows]

    def _query(self, soql: str, batch: int) -> dict[str, Any]:
        obj, _, rows = self._select(soql)
        rows = [{"attributes": {"type": obj, "url": f"/services/data/v{VERSION}/sobjects/{obj}/{r.get('Id')}"},
                 **r} for r in rows]
        locator = f"01g{len(self._cursors):015d}"
        self._cursors[locator] = (rows, batch)
        return self._page(locator, 0)

    def _page(self, locator: str, offset: int) -> dict[str, Any]:
        rows, batch = self._cursors[locator]
        page = rows[offset:offset + batch]
        done = offset + batch >= len(rows)
        out = {"totalSize": len(rows), "done": done, "records": page}
        if not done:
            out["nextRecordsUrl"] = f"/services/data/v{VERSION}/query/{locator}-{offset + batch}"
        return out

    def _more(self, token: str) -> dict[str, Any]:
        locator, _, offset = token.rpartition("-")
        return self._page(locator, int(offset))

    def _sobjects(self, h: BaseHTTPRequestHandler, parts: list[str]) -> None:
        obj, rest = parts[0], parts[1:]
        rows = self.objects.get(obj)
        if rows is None:
            return self._json(h, 404, [{"errorCode": "NOT_FOUND", "message": f"sObject type '{obj}' is not supported"}])
        if rest == ["describe"]:
            names = dict.fromkeys(["Id", "LastModifiedDate", *(k for r in rows for k in r),
                                   *self.extra_fields.get(obj, [])])
            return self._json(h, 200, {"name": obj, "fields": [{"name": n} for n in names]})
        row = next((r for r in rows if rest and r["Id"] == rest[0]), None)
        if row is None:
            return self._json(h, 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
        return self._json(h, 200, {"attributes": {"type": obj}, **row})

    def _bulk(self, h: BaseHTTPRequestHandler, method: str, parts: list[str], body: Any,
              query: dict[str, list[str]]) -> None:
        if method == "POST" and not parts:
            _, fields, rows = self._select(body["query"])
            job_id = f"750{len(self._jobs):015d}"
            self._jobs[job_id] = [{f: r.get(f) for f in fields} for r in rows]
            return self._json(h, 200, {"id": job_id, "operation": body["operation"], "state": "UploadComplete"})
        job_id = parts[0]
        if parts[1:] == []:
            return self._json(h, 200, {"id": job_id, "state": "JobComplete",
                                       "numberRecordsProcessed": len(self._jobs[job_id])})
        rows = self._jobs[job_id]
        start = int(query.get("locator", ["0"])[0])
        size = int(query.get("maxRecords", ["50000"])[0])
        chunk = rows[start:start + size]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["Id"], lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in chunk)
        nxt = str(start + size) if start + size < len(rows) else "null"
        self._send(h, 200, buf.getvalue().encode(), "text/csv",
                   {"Sforce-Locator": nxt, "Sforce-NumberOfRecords": str(len(chunk))})
