"""The console's static files, read once at import into a fixed catalogue: a request names a file of the catalogue or
nothing (no path of the request ever reaches the filesystem, so there is no traversal to defend against), and every
answer carries the headers of a page that runs only its own script.

The page is plain HTML, CSS and JavaScript (no build step, nothing from a CDN). It calls the same public routes as any
client, with the key the user pastes, kept in ``sessionStorage`` and sent as ``Authorization: Bearer``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from motorhead.entrypoints.http.lambda_adapter import requested_path
from motorhead.errors import NotFoundError

STATIC = Path(__file__).resolve().parent / "static"
INDEX = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Only the page's own files: no inline script or style, no other origin; the API it calls is this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-cache",  # revalidated (ETag) on every load: a new deploy shows at once
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


class ConsoleFiles:
    """The catalogue: file name → its bytes, type and ETag."""

    def __init__(self, files: Mapping[str, StaticFile]) -> None:
        self._files = dict(files)

    @classmethod
    def load(cls, directory: Path = STATIC) -> ConsoleFiles:
        files = {}
        for path in sorted(directory.iterdir()):
            if path.is_file() and path.suffix in CONTENT_TYPES:
                body = path.read_bytes()
                etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                files[path.name] = StaticFile(body=body, content_type=CONTENT_TYPES[path.suffix], etag=etag)
        return cls(files)

    def names(self) -> list[str]:
        return sorted(self._files)

    def response(self, name: str, request: Request) -> Response:
        """The file (200, or 304 when the client holds this version); ``NotFoundError`` for any other name."""
        found = self._files.get(name)
        if found is None:
            raise NotFoundError("no such file")
        headers = {**SECURITY_HEADERS, "etag": found.etag}
        if found.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(found.body, media_type=found.content_type, headers=headers)

    def page(self, request: Request) -> Response:
        """``/console/``: the page. ``/console`` (API Gateway routes both here): a redirect to ``console/``, relative,
        so that it holds under ``/motorhead`` and any base path, and the page's relative URLs resolve in its folder."""
        if not requested_path(request).endswith("/"):
            return RedirectResponse("console/", status_code=308, headers=SECURITY_HEADERS)
        return self.response(INDEX, request)
