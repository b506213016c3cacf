"""GET /sessions — session ids, least recently written first; the body stays Motorhead's bare list."""

from typing import Annotated

from fastapi import Query, Response
from mangum import Mangum

from motorhead.api import create_app
from motorhead.service import memory_service
from motorhead.settings import get_settings

app = create_app(title="motorhead: list sessions", settings=get_settings())
service = memory_service()


@app.get("/sessions", response_model=list[str])
def list_sessions(
    response: Response,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 10,
    namespace: str | None = None,
) -> list[str]:
    result = service.list_sessions(page=page, size=size, namespace=namespace)
    response.headers.update(result.headers())
    return result.session_ids


handler = Mangum(app, lifespan="off")
