"""The core of memrelay, in layers that import only downwards:

``core`` -> ``domain`` -> ``adapters`` -> ``stores`` -> ``memory`` -> ``guidance`` -> ``egress`` -> ``ingest``.

It never imports Flask, RQ or Redis; the gateway and worker packages are its edges, and
``memrelay.composition`` builds its services once per process.
"""
