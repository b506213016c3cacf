"""POST /sessions/{session_id}/memory — append messages (all or none); an optional context replaces the summary."""

from mangum import Mangum

from motorhead.api import SessionId, create_app
from motorhead.models import MemoryIn, StatusOut
from motorhead.service import memory_service
from motorhead.settings import get_settings

app = create_app(title="motorhead: post memory", settings=get_settings())
service = memory_service()


@app.post("/sessions/{session_id}/memory", response_model=StatusOut)
def post_memory(session_id: SessionId, body: MemoryIn, namespace: str | None = None) -> StatusOut:
    return service.add_memory(session_id, body, namespace=namespace)


handler = Mangum(app, lifespan="off")
