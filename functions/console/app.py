"""GET /console — the web console: static files from the layer, public (the page calls the API with the key the user
pastes). ``/console`` redirects to ``/console/``, the page; ``/console/{file}`` serves its script and style."""

from fastapi import Request, Response

from motorhead.entrypoints.console.files import ConsoleFiles
from motorhead.entrypoints.http.app import create_app
from motorhead.entrypoints.http.lambda_adapter import lambda_handler, path_parameter
from motorhead.settings import get_settings

app = create_app(title="motorhead: console", settings=get_settings())
files = ConsoleFiles.load()


@app.get("/console", include_in_schema=False)
def console_page(request: Request) -> Response:
    return files.page(request)


@app.get("/console/{file}", include_in_schema=False)
def console_file(file: str, request: Request) -> Response:
    return files.response(path_parameter(request, "file", file), request)


handler = lambda_handler(app)
