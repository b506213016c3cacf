"""DELETE /sessions/{session_id}/memory — forget the session and everything stored about it."""

from motorhead.composition.access import access_control
from motorhead.composition.memory import memory_service
from motorhead.core.auth import Scope
from motorhead.entrypoints.http.app import Session, create_app
from motorhead.entrypoints.http.lambda_adapter import lambda_handler
from motorhead.entrypoints.http.models import StatusOut
from motorhead.settings import get_settings

app = create_app(title="motorhead: delete memory", settings=get_settings(), access=access_control(), scope=Scope.DELETE)
service = memory_service()


@app.delete("/sessions/{session_id}/memory", response_model=StatusOut)
def delete_memory(session: Session, namespace: str | None = None) -> StatusOut:
    service.delete_memory(session, namespace=namespace)
    return StatusOut()


handler = lambda_handler(app)
