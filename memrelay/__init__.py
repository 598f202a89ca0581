"""memrelay: a self-hosted personalization memory gateway.

Everything is installed under this one namespace. The repository keeps the design card's folders:
``engine/`` (``memrelay.engine``, the layered core), ``connectors/``, ``workflows/``, ``gateway/`` and
``worker/`` (``memrelay.gateway``, ``memrelay.worker``); this folder holds the composition root
(``memrelay.composition``), the job queue (``memrelay.queue``), the CLI and process supervision.
The layers and what each may import are declared in ``.importlinter`` and checked by ``make lint``.
"""
