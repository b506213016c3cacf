"""POST /users/{user_id}/retrieval — the most relevant past messages of every session of the user, best first."""

from motorhead.composition.access import access_control
from motorhead.composition.long_term import retrieval_service
from motorhead.core.auth import Scope
from motorhead.entrypoints.http.app import User, create_app
from motorhead.entrypoints.http.lambda_adapter import lambda_handler
from motorhead.entrypoints.http.models import ExplainedUserHitOut, UserRetrievalIn
from motorhead.settings import get_settings

app = create_app(title="motorhead: user retrieval", settings=get_settings(), access=access_control(), scope=Scope.READ)
service = retrieval_service()


# `parts` is in an answer only when the body asks for it (`explain`)
@app.post("/users/{user_id}/retrieval", response_model=list[ExplainedUserHitOut], response_model_exclude_none=True)
def user_retrieval(user: User, body: UserRetrievalIn) -> list[ExplainedUserHitOut]:
    found = service.retrieve_user(user, body.text, body.limit, body.filters(), explain=body.explain)
    return [ExplainedUserHitOut.explained(hit) for hit in found]


handler = lambda_handler(app)
