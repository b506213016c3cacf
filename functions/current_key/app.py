"""GET /keys/current — who the credential is: n8n's Motorhead node tests its credentials with this route (200 for a
valid key, 401 otherwise)."""

from motorhead.composition.access import access_control
from motorhead.entrypoints.http.app import CurrentCaller, create_app
from motorhead.entrypoints.http.lambda_adapter import lambda_handler
from motorhead.entrypoints.http.models import CurrentKeyOut
from motorhead.settings import get_settings

# the key's own description, from the caller: no store call for the rate's token to ride on
app = create_app(title="motorhead: current key", settings=get_settings(), access=access_control(), reaches_store=False)


@app.get("/keys/current", response_model=CurrentKeyOut)
def current_key(caller: CurrentCaller) -> CurrentKeyOut:
    return CurrentKeyOut.of(caller)


handler = lambda_handler(app)
