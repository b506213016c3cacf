"""DELETE /users/{user_id} — forget the user: every session bound to it, and everything stored about them."""

from fastapi import Response

from motorhead.composition.access import access_control
from motorhead.composition.memory import memory_service
from motorhead.core.auth import Scope
from motorhead.entrypoints.http.app import User, create_app
from motorhead.entrypoints.http.lambda_adapter import lambda_handler
from motorhead.entrypoints.http.models import DeletedUserOut
from motorhead.settings import get_settings

app = create_app(title="motorhead: delete user", settings=get_settings(), access=access_control(), scope=Scope.DELETE)
service = memory_service()


@app.delete("/users/{user_id}", response_model=DeletedUserOut, responses={202: {"model": DeletedUserOut}})
def delete_user(user: User, response: Response) -> DeletedUserOut:
    deleted, complete = service.delete_user(user)
    if not complete:
        response.status_code = 202  # more sessions of the user are left: call again
    return DeletedUserOut.of(deleted, complete)


handler = lambda_handler(app)
