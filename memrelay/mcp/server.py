"""Building and running the MCP server over stdio or streamable HTTP."""

from __future__ import annotations

from typing import Any, Literal

from mcp.server.mcpserver import MCPServer

from memrelay.composition import Services, build_services
from memrelay.engine.core.settings import Settings
from memrelay.mcp.tools import register_tools

INSTRUCTIONS = (
    "memrelay is a memory of people, companies and other records. Use memory_save to remember something about "
    "a record (name it by email, website_url or record_id), memory_retrieve to recall what is relevant to a "
    "question, memory_digest for everything about one record, ai_smart_guidelines for the rules that apply to "
    "a task, and prompt to generate text grounded in both."
)

Transport = Literal["stdio", "http"]


def build_server(services: Services) -> MCPServer[Any]:
    """An MCP server whose tools call ``services``."""
    server: MCPServer[Any] = MCPServer("memrelay", instructions=INSTRUCTIONS, log_level="WARNING")
    register_tools(server, services)
    return server


def run_server(settings: Settings, transport: Transport = "stdio", *, host: str = "127.0.0.1",
               port: int = 8765, path: str = "/mcp") -> None:
    """Migrate the database, then serve until stopped (stdio: until the client closes stdin)."""
    services = build_services(settings)
    services.migrate()
    server = build_server(services)
    try:
        if transport == "stdio":
            server.run("stdio")
        else:
            server.run("streamable-http", host=host, port=port, streamable_http_path=path)
    finally:
        services.close()
