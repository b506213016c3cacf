"""DELETE /sessions/{session_id}/memory — forget the session and everything stored about it."""

from mangum import Mangum

from motorhead.api import SessionId, create_app
from motorhead.models import StatusOut
from motorhead.service import memory_service
from motorhead.settings import get_settings

app = create_app(title="motorhead: delete memory", settings=get_settings())
service = memory_service()


@app.delete("/sessions/{session_id}/memory", response_model=StatusOut)
def delete_memory(session_id: SessionId, namespace: str | None = None) -> StatusOut:
    return service.delete_memory(session_id, namespace=namespace)


handler = Mangum(app, lifespan="off")
