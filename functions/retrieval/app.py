"""POST /sessions/{session_id}/retrieval — the session's most relevant past messages for a text, best first (with
``explain``, what each score is made of)."""

from motorhead.composition.access import access_control
from motorhead.composition.long_term import retrieval_service
from motorhead.core.auth import Scope
from motorhead.entrypoints.http.app import Session, create_app
from motorhead.entrypoints.http.lambda_adapter import lambda_handler
from motorhead.entrypoints.http.models import ExplainedHitOut, RetrievalIn
from motorhead.settings import get_settings

app = create_app(title="motorhead: retrieval", settings=get_settings(), access=access_control(), scope=Scope.READ)
service = retrieval_service()


# `parts` is in an answer only when the body asks for it (`explain`): without, the body is Motorhead's, unchanged
@app.post("/sessions/{session_id}/retrieval", response_model=list[ExplainedHitOut], response_model_exclude_none=True)
def retrieval(session: Session, body: RetrievalIn) -> list[ExplainedHitOut]:
    return [
        ExplainedHitOut.explained(hit) for hit in service.retrieve(session, body.text, body.k, explain=body.explain)
    ]


handler = lambda_handler(app)
