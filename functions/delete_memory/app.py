"""DELETE /sessions/{session_id}/memory — forget the session and everything stored about it."""

from mangum import Mangum

from motorhead.composition.memory import memory_service
from motorhead.entrypoints.http.app import Session, create_app
from motorhead.entrypoints.http.models import StatusOut
from motorhead.settings import get_settings

app = create_app(title="motorhead: delete memory", settings=get_settings())
service = memory_service()


@app.delete("/sessions/{session_id}/memory", response_model=StatusOut)
def delete_memory(session: Session, namespace: str | None = None) -> StatusOut:
    service.delete_memory(session, namespace=namespace)
    return StatusOut()


handler = Mangum(app, lifespan="off")
