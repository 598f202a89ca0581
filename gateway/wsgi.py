"""WSGI entry point for gunicorn: ``gunicorn memrelay.gateway.wsgi:app`` (settings from MEMRELAY_* variables)."""

from memrelay.gateway.app import create_app

app = create_app()
