"""Request bodies without a Content-Length (chunked) are counted against the size limit too.

Werkzeug caps a streamed body at ``MAX_CONTENT_LENGTH`` by cutting it short, so an oversized chunked body
used to be *truncated* and its prefix processed. Here such a body is read once, up to one byte past the
limit: over it → 413 ``payload_too_large``; broken chunk framing → 400; otherwise the body is buffered and
handed on with an exact Content-Length, so every later reader sees the whole body or nothing.
"""

from __future__ import annotations

import io
import logging

from flask import current_app, request
from werkzeug.wsgi import get_content_length

from memrelay.engine.core.errors import BadRequest, PayloadTooLarge

log = logging.getLogger(__name__)
_READ_CHUNK = 64 * 1024


def buffer_streamed_body() -> None:
    """``before_request`` hook: enforce the size limit on a body sent without Content-Length."""
    env = request.environ
    if get_content_length(env) is not None or "wsgi.input_terminated" not in env:
        return  # Content-Length bodies: Werkzeug answers 413 itself; unterminated streams are never read
    limit = int(current_app.config["MAX_CONTENT_LENGTH"])
    buf = bytearray()
    try:
        while len(buf) <= limit:
            chunk = env["wsgi.input"].read(min(_READ_CHUNK, limit + 1 - len(buf)))
            if not chunk:
                break
            buf += chunk
    except Exception as exc:  # the server's chunk parser: bad sizes, missing terminators, disconnects
        log.info("unreadable request body: %s", exc)
        raise BadRequest("the request body could not be read (malformed chunked encoding)") from None
    if len(buf) > limit:
        raise PayloadTooLarge(f"request body exceeds {limit} bytes", details={"maxBytes": limit})
    env["wsgi.input"] = io.BytesIO(bytes(buf))
    env["CONTENT_LENGTH"] = str(len(buf))
    env.pop("HTTP_TRANSFER_ENCODING", None)  # the body is now a plain, fully read one
