"""One blueprint per area; registered here in one place. Views parse, authorise, call one service
(picked from the app's ``Services``) and render; they may import the rest of the gateway and below."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from memrelay.gateway.blueprints import admin, health

    for module in (health, admin):
        app.register_blueprint(module.bp)
    for name in ("memory", "semantic", "webhooks", "governance", "generation", "outbound", "workflows",
                 "enrichment"):
        try:
            module = __import__(f"memrelay.gateway.blueprints.{name}", fromlist=["bp"])
        except ModuleNotFoundError as exc:
            if exc.name != f"memrelay.gateway.blueprints.{name}":
                raise
            continue
        app.register_blueprint(module.bp)
    from memrelay.gateway.blueprints import personize_v1_1  # mirrors the views above on /api/v1.1

    app.register_blueprint(personize_v1_1.bp)
    app.register_blueprint(personize_v1_1.legacy_bp)
