"""WSGI entry point for gunicorn (settings from MEMRELAY_* variables)::

    gunicorn -c python:memrelay.gateway.gunicorn_conf memrelay.gateway.wsgi:app

Importing this module builds the app and its services, so only gunicorn's workers import it, after the
fork (see :mod:`memrelay.gateway.gunicorn_conf`: no preload)."""

from memrelay.gateway.app import create_app

app = create_app()
