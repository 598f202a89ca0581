"""memrelay engine: the pure domain core (records, properties, memories, recall, governance, generation).

It never imports Flask, RQ or Redis; the gateway and worker packages are its edges.
"""
