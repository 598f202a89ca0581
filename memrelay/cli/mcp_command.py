"""``memrelay mcp [--transport stdio|http] [--host H] [--port P]``: the MCP server for agents.

Registered in :mod:`memrelay.cli.main` with ``cli.add_command(mcp_command)``. On stdio the API key comes from
``MEMRELAY_API_KEY``; over HTTP from each request's ``Authorization: Bearer`` or ``X-API-Key`` header.
"""

from __future__ import annotations

import click

from memrelay.cli.support import cli_settings


@click.command("mcp")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True,
              help="stdio (for a desktop client that spawns memrelay) or streamable HTTP.")
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP: interface to listen on.")
@click.option("--port", type=int, default=8765, show_default=True, help="HTTP: port to listen on.")
@click.option("--path", default="/mcp", show_default=True, help="HTTP: the MCP endpoint's path.")
def mcp_command(transport: str, host: str, port: int, path: str) -> None:
    """Run memrelay's MCP server (memory_save, memory_retrieve, memory_digest, ai_smart_guidelines ...)."""
    from memrelay.mcp.server import run_server

    settings = cli_settings()
    settings.ensure_data_dir()
    run_server(settings, "http" if transport == "http" else "stdio", host=host, port=port, path=path)
