"""The memory as MCP tools: the same services, access control and tenancy as the REST routes, over the ``mcp`` SDK.

- ``tools``: the server factory (``memory_server``) and the caller every tool acts as (``acting_as``);
- ``http``: the streamable HTTP app (stateless, JSON responses) behind the REST API's access control.

Only the MCP function and the stdio entry point (``python -m devserver.mcp``) import this package: the memory
functions never load the SDK (an import contract).
"""
