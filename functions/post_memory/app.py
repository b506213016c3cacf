"""POST /sessions/{session_id}/memory — append messages (all or none); an optional context replaces the summary."""

from motorhead.composition.access import access_control
from motorhead.composition.memory import memory_service
from motorhead.core.auth import Scope
from motorhead.entrypoints.http.app import Session, UserIdQuery, create_app
from motorhead.entrypoints.http.lambda_adapter import lambda_handler
from motorhead.entrypoints.http.models import MemoryIn, StatusOut
from motorhead.settings import get_settings

app = create_app(title="motorhead: post memory", settings=get_settings(), access=access_control(), scope=Scope.WRITE)
service = memory_service()


@app.post("/sessions/{session_id}/memory", response_model=StatusOut)
def post_memory(session: Session, body: MemoryIn, user_id: UserIdQuery, namespace: str | None = None) -> StatusOut:
    service.add_memory(session, body.new_messages(), context=body.context, namespace=namespace, user_id=user_id)
    return StatusOut()


handler = lambda_handler(app)
