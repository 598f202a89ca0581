"""Structured JSON logs with the request/job id on every line."""

from __future__ import annotations

import contextvars
import logging
import sys

from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str = "INFO", *, json_logs: bool = True) -> None:
    """Idempotently route the root logger to stderr in JSON (or plain text for humans)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_memrelay", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._memrelay = True  # type: ignore[attr-defined]
    handler.addFilter(_RequestIdFilter())
    if json_logs:
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                                           rename_fields={"levelname": "level", "asctime": "ts"}))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("LiteLLM", "httpx", "urllib3", "pymilvus", "milvus_lite", "grpc"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
