"""The console function (``GET /console``, ``/console/{file}``) on Lambda events: the page and its files with their
types and a strict policy, a redirect to the page's folder, and nothing else: any other name is a JSON 404."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from motorhead.entrypoints.console.files import STATIC, ConsoleFiles
from tests.support import Api, body, cold_start, load_event


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with cold_start(REDIS_URL="redis://127.0.0.1:1/0") as loaded:  # nothing listens: the console needs no Redis
        yield loaded


def file_event(raw_path: str, name: str | None, **headers: str) -> dict[str, Any]:
    """A ``GET /console/{file}`` event (``name`` None: ``GET /console``) for ``raw_path``, as API Gateway sends it."""
    event = copy.deepcopy(load_event("console-ok"))
    if name is not None:
        event["routeKey"] = event["requestContext"]["routeKey"] = "GET /console/{file}"
        event["pathParameters"] = {"file": name}
    event["rawPath"] = event["requestContext"]["http"]["path"] = raw_path
    event["headers"].update(headers)
    return event


def test_console_given_the_page_answers_html_with_a_strict_policy(api: Api) -> None:
    answer = api.invoke("ConsoleFunction", load_event("console-ok"))
    assert answer["statusCode"] == 200
    headers = answer["headers"]
    assert headers["content-type"] == "text/html; charset=utf-8"
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert '<script src="console.js" defer></script>' in answer["body"]


def test_console_given_no_trailing_slash_redirects_to_the_pages_folder(api: Api) -> None:
    for path in ("/console", "/motorhead/console"):
        answer = api.invoke("ConsoleFunction", file_event(path, None))
        assert (answer["statusCode"], answer["headers"]["location"]) == (308, "console/")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("console.js", "text/javascript; charset=utf-8"), ("console.css", "text/css; charset=utf-8"),
     ("favicon.svg", "image/svg+xml"), ("index.html", "text/html; charset=utf-8")],
)  # fmt: skip
def test_console_given_each_file_answers_it_with_its_type(api: Api, name: str, content_type: str) -> None:
    answer = api.invoke("ConsoleFunction", file_event(f"/console/{name}", name))
    assert answer["statusCode"] == 200
    assert answer["headers"]["content-type"] == content_type
    assert answer["headers"]["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "name",
    ["../app.py", "..", ".", "..%2Fapp.py", "console.js\x00.png", "/etc/passwd", "\\..\\app.py", "CONSOLE.JS",
     "files.py", "__init__.py", "console.js/", "nope.html", "%2e%2e%2fsettings.py", " console.js"],
)  # fmt: skip
def test_console_given_a_hostile_or_unknown_name_answers_a_json_404(api: Api, name: str) -> None:
    answer = api.invoke("ConsoleFunction", file_event("/console/x", name))
    assert answer["statusCode"] == 404
    assert answer["headers"]["content-type"] == "application/json"
    assert body(answer) == {"error": "no such file"}


def test_console_given_the_sample_hostile_event_answers_404(api: Api) -> None:
    assert api.invoke("ConsoleFunction", load_event("console-hostile-file"))["statusCode"] == 404


def test_console_given_the_version_the_browser_holds_answers_304(api: Api) -> None:
    first = api.invoke("ConsoleFunction", file_event("/console/console.js", "console.js"))
    held = {"if-none-match": first["headers"]["etag"]}
    again = api.invoke("ConsoleFunction", file_event("/console/console.js", "console.js", **held))
    assert again["statusCode"] == 304 and not again.get("body")


def test_console_files_given_the_static_folder_catalogues_only_its_own_files() -> None:
    # The catalogue is read once at import: the page, its script, its style and its icon, nothing else
    assert ConsoleFiles.load().names() == ["console.css", "console.js", "favicon.svg", "index.html"]
    assert not any(path.suffix == ".py" for path in STATIC.iterdir())


def test_console_script_given_api_data_renders_it_as_text_only() -> None:
    # The script never parses API data as HTML: no innerHTML, outerHTML, insertAdjacentHTML, document.write, eval
    script = (STATIC / "console.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert "localStorage" not in script  # the key lives in sessionStorage (this tab) only
