"""GET / — Motorhead's health check: the server time."""

from mangum import Mangum

from motorhead.core.clock import now_ms
from motorhead.entrypoints.http.app import create_app
from motorhead.entrypoints.http.models import HealthOut
from motorhead.settings import get_settings

app = create_app(title="motorhead: health", settings=get_settings())


@app.get("/", response_model=HealthOut)
def health() -> HealthOut:
    return HealthOut(now=now_ms())


handler = Mangum(app, lifespan="off")
