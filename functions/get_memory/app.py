"""GET /sessions/{session_id}/memory — the newest messages (newest first), the summary and the token count."""

from motorhead.composition.access import access_control
from motorhead.composition.memory import memory_service
from motorhead.core.auth import Scope
from motorhead.entrypoints.http.app import Session, create_app
from motorhead.entrypoints.http.lambda_adapter import lambda_handler
from motorhead.entrypoints.http.models import MemoryOut
from motorhead.settings import get_settings

app = create_app(title="motorhead: get memory", settings=get_settings(), access=access_control(), scope=Scope.READ)
service = memory_service()


@app.get("/sessions/{session_id}/memory", response_model=MemoryOut)
def get_memory(session: Session) -> MemoryOut:
    return MemoryOut.of(service.get_memory(session))


handler = lambda_handler(app)
