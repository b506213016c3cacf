"""GET /sessions — the caller's session ids, least recently written first; the body stays Motorhead's bare list."""

from typing import Annotated

from fastapi import Query, Response

from motorhead.composition.access import access_control
from motorhead.composition.memory import memory_service
from motorhead.core.auth import Scope
from motorhead.entrypoints.http.app import Tenant, UserIdQuery, create_app
from motorhead.entrypoints.http.lambda_adapter import lambda_handler
from motorhead.entrypoints.http.models import page_headers
from motorhead.settings import get_settings

app = create_app(title="motorhead: list sessions", settings=get_settings(), access=access_control(), scope=Scope.LIST)
service = memory_service()


@app.get("/sessions", response_model=list[str])
def list_sessions(
    response: Response,
    tenant: Tenant,
    user_id: UserIdQuery,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 10,
    namespace: str | None = None,
) -> list[str]:
    result = service.list_sessions(tenant, page=page, size=size, namespace=namespace, user_id=user_id)
    response.headers.update(page_headers(result))
    return result.session_ids


handler = lambda_handler(app)
