"""GET /sessions/{session_id} — a session's stats: message count, tokens, last write, its user and namespaces, and
whether a summary or an index job still has work on it. Never its messages (GET .../memory has those). A session that
does not exist is empty (``exists`` false), as GET memory answers it."""

from motorhead.composition.access import access_control
from motorhead.composition.memory import memory_service
from motorhead.core.auth import Scope
from motorhead.entrypoints.http.app import Session, create_app
from motorhead.entrypoints.http.lambda_adapter import lambda_handler
from motorhead.entrypoints.http.models import SessionOut
from motorhead.settings import get_settings

app = create_app(title="motorhead: get session", settings=get_settings(), access=access_control(), scope=Scope.READ)
service = memory_service()


@app.get("/sessions/{session_id}", response_model=SessionOut)
def get_session(session: Session) -> SessionOut:
    return SessionOut.of(service.session_status(session))


handler = lambda_handler(app)
