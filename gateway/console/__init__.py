"""The operator console at ``/console``: server-rendered pages (Jinja templates, local CSS and a little JS)
over the same engine services the JSON API calls, signed in with an API key (see :mod:`.session`)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/static")

from memrelay.gateway.console import views as views  # noqa: E402  (registers the routes on bp)
