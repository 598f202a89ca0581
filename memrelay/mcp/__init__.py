"""memrelay's MCP server (an edge, a sibling of ``memrelay.gateway`` and ``memrelay.worker``).

Owns the ``memrelay mcp`` server: its tools (``tools``), how a call is authorised by an API key (``auth``) and
the transports (``server``: stdio and streamable HTTP, on the official ``mcp`` SDK). May import
``memrelay.composition`` and the engine; never the gateway or the worker.
"""
