"""WSGI entry point for gunicorn: ``gunicorn gateway.wsgi:app`` (settings from MEMRELAY_* variables)."""

from gateway.app import create_app

app = create_app()
