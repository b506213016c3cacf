"""GET /sessions/{session_id}/memory — the newest messages (newest first), the summary and the token count."""

from mangum import Mangum

from motorhead.api import SessionId, create_app
from motorhead.models import MemoryOut
from motorhead.service import memory_service
from motorhead.settings import get_settings

app = create_app(title="motorhead: get memory", settings=get_settings())
service = memory_service()


@app.get("/sessions/{session_id}/memory", response_model=MemoryOut)
def get_memory(session_id: SessionId) -> MemoryOut:
    return service.get_memory(session_id)


handler = Mangum(app, lifespan="off")
