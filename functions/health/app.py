"""GET / — Motorhead's health check: the server time. Public (no credential), and it touches no Redis."""

from motorhead.core.clock import now_ms
from motorhead.entrypoints.http.app import create_app
from motorhead.entrypoints.http.lambda_adapter import lambda_handler
from motorhead.entrypoints.http.models import HealthOut
from motorhead.settings import get_settings

app = create_app(title="motorhead: health", settings=get_settings())


@app.get("/", response_model=HealthOut)
def health() -> HealthOut:
    return HealthOut(now=now_ms())


handler = lambda_handler(app)
