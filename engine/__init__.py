"""The core of memrelay, in layers that import only downwards:

``core`` -> ``domain`` -> ``adapters`` -> ``stores`` -> ``memory`` -> ``guidance`` -> ``egress`` -> ``ingest``.

It never imports Flask, RQ or Redis, nor ``memrelay.composition``: every service names its dependencies in its
constructor (narrow ``Protocol``s where it needs only part of another), and the composition root builds and
wires them once per process. The gateway, worker and CLI are its edges.
"""
