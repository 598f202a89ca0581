"""Local test doubles for delivery: an HTTP sink (Slack incoming webhook / any webhook) and an SMTP sink."""

from __future__ import annotations

import json
import socketserver
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HttpSink:
    """Records JSON POSTs; ``statuses`` are answered in order, then 200."""

    def __init__(self, statuses: list[int] | None = None):
        self.posts: list[dict[str, Any]] = []
        self.statuses = deque(statuses or [])
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = sink.statuses.popleft() if sink.statuses else 200
                if status == 200:
                    sink.posts.append(json.loads(body or b"{}"))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpSink:
    """A minimal SMTP server (HELO/EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) keeping each message."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write((line + "\r\n").encode())

            def handle(self) -> None:
                self.reply("220 sink ready")
                mail: dict[str, Any] = {"rcpt": []}
                while line := self.rfile.readline():
                    cmd = line.decode(errors="replace").strip()
                    verb = cmd[:4].upper()
                    if verb in ("HELO", "EHLO"):
                        self.reply("250 sink")
                    elif verb == "MAIL":
                        mail = {"from": cmd[10:].strip("<> "), "rcpt": []}
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        mail["rcpt"].append(cmd[8:].strip("<> "))
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 go ahead")
                        data = []
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                            data.append(chunk.decode(errors="replace"))
                        mail["data"] = "".join(data)
                        sink.messages.append(mail)
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def schema_responder(messages: list[dict[str, Any]]) -> str:
    """Fake LLM answers: JSON filling the requested schema's fields with channel-compliant text."""
    system = next((m.get("content") or "" for m in messages if m.get("role") == "system"), "")
    if "JSON Schema:\n" not in system:
        return "Plain answer for the team."
    schema = json.loads(system.split("JSON Schema:\n", 1)[1].strip().splitlines()[0])
    canned = {"subject": "Welcome aboard", "body_html": "<p>Welcome! Your first step is the setup guide.</p>",
              "body_text": "Welcome! Your first step is the setup guide.",
              "text": "New lead worth a call. Next action: reply today."}
    return json.dumps({k: canned.get(k, f"{k} text") for k in schema.get("properties", {})})
