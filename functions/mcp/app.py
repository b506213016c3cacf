"""POST, GET and DELETE /mcp — the memory as MCP tools (streamable HTTP, stateless, JSON responses)."""

from motorhead.composition.access import access_control
from motorhead.composition.long_term import retrieval_service
from motorhead.composition.memory import memory_service
from motorhead.entrypoints.http.lambda_adapter import lambda_handler
from motorhead.entrypoints.mcp.http import mcp_app
from motorhead.entrypoints.mcp.tools import memory_server
from motorhead.settings import get_settings

settings = get_settings()
server = memory_server(memory=memory_service(), retrieval=retrieval_service(), settings=settings)
app = mcp_app(server, settings=settings, access=access_control())

handler = lambda_handler(app)
