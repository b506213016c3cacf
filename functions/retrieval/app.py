"""POST /sessions/{session_id}/retrieval — the session's most relevant past messages for a text, best first."""

from mangum import Mangum

from motorhead.api import SessionId, create_app
from motorhead.models import RetrievalHitOut, RetrievalIn
from motorhead.service import retrieval_service
from motorhead.settings import get_settings

app = create_app(title="motorhead: retrieval", settings=get_settings())
service = retrieval_service()


@app.post("/sessions/{session_id}/retrieval", response_model=list[RetrievalHitOut])
def retrieval(session_id: SessionId, body: RetrievalIn) -> list[RetrievalHitOut]:
    return service.retrieve(session_id, body.text, body.k)


handler = Mangum(app, lifespan="off")
