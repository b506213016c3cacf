"""The documentation holds together: every relative link in README.md, docs/ and events/README.md reaches a file
and, for a `#anchor`, a heading of that file (GitHub's slugs); the README stays a five-minute read that links every
page of docs/, and no page of docs/ is left unlinked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[2]

README_MAX_LINES = 200

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) or ![alt](target), with an optional "title"; the text may hold one level of brackets
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    target: str


def documentation_files(root: Path) -> list[Path]:
    """README.md, every page of docs/, and events/README.md when it is there."""
    files = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    events = root / "events" / "README.md"
    if events.is_file():
        files.append(events)
    return files


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def links_of(path: Path) -> list[Link]:
    """Every Markdown link of a file (inline, image or reference definition), code blocks and code spans left out."""
    links = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            links.append(Link(path, number, definition.group(1)))
            continue
        for match in INLINE_LINK.finditer(CODE_SPAN.sub("", line)):
            links.append(Link(path, number, match.group(1)))
    return links


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: links and emphasis reduced to their text, lowercased, every character but
    letters, digits, `-`, `_` and spaces dropped (backticks and other punctuation included), spaces to `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](url) -> text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings, with GitHub's -1, -2… for repeated ones."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        heading = HEADING.match(line)
        if not heading:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        anchors.add(base if count == 0 else f"{base}-{count}")
    return anchors


def is_relative(target: str) -> bool:
    return not SCHEME.match(target) and not target.startswith("//")


def resolve(link: Link) -> tuple[Path, str]:
    """The file a relative link points to (its own file for `#anchor`), and the anchor ('' when none)."""
    path_part, _, anchor = link.target.partition("#")
    path_part = unquote(path_part.split("?", 1)[0])
    target = link.source if not path_part else (link.source.parent / path_part)
    return target.resolve(), unquote(anchor)


def broken_links(files: list[Path], root: Path) -> list[str]:
    """Each relative link that reaches no file, or a Markdown file without its anchor, as `file:line: target (why)`."""
    broken = []
    for source in files:
        for link in links_of(source):
            if not is_relative(link.target):
                continue
            where = f"{source.relative_to(root)}:{link.line}: {link.target}"
            target, anchor = resolve(link)
            if not target.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and target.suffix == ".md" and anchor not in anchors_of(target):
                broken.append(f"{where} (no heading #{anchor} in {target.relative_to(root)})")
    return broken


def linked_files(source: Path) -> set[Path]:
    """The files a page's relative links reach."""
    return {resolve(link)[0] for link in links_of(source) if is_relative(link.target)}


def docs_pages(root: Path) -> list[Path]:
    return sorted(page.resolve() for page in (root / "docs").glob("*.md"))


# --- the checker itself --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("MCP: the memory as tools for agents", "mcp-the-memory-as-tools-for-agents"),
        ("The local model: where it comes from", "the-local-model-where-it-comes-from"),
        (
            "With Docker: `sam local invoke` and `sam local start-api`",
            "with-docker-sam-local-invoke-and-sam-local-start-api",
        ),
        (
            "The three modes (`MOTORHEAD_AUTH`; the template's `AuthMode`)",
            "the-three-modes-motorhead_auth-the-templates-authmode",
        ),
        ("Where it runs, and why there", "where-it-runs-and-why-there"),
        ("What `make run` does", "what-make-run-does"),
        ("See [the API](api.md) page", "see-the-api-page"),
    ],
)
def test_given_a_heading_when_slugged_then_it_is_githubs_anchor(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_given_repeated_headings_when_anchored_then_they_are_numbered_as_on_github(tmp_path: Path) -> None:
    # Given a page with the same heading twice, and a heading-like line inside a code block
    page = tmp_path / "page.md"
    page.write_text("# Notes\n\n## Setup\n\n```bash\n# not a heading\n```\n\n## Setup\n", encoding="utf-8")

    # When its anchors are read
    anchors = anchors_of(page)

    # Then the second one is -1, and the code block's comment is no heading
    assert anchors == {"notes", "setup", "setup-1"}


def test_given_a_broken_file_or_anchor_when_the_links_are_checked_then_each_is_reported(tmp_path: Path) -> None:
    # Given a README linking a page that exists, one that does not, and anchors that do and do not exist
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "api.md").write_text("# API\n\n## User-level memory\n", encoding="utf-8")
    (tmp_path / "README.md").write_text(
        "# Title\n\n"
        "[ok](docs/api.md#user-level-memory) [ok too](#title) [web](https://example.com/#nothing)\n"
        "[gone](docs/missing.md) [no anchor](docs/api.md#errors) [no local anchor](#nope)\n"
        "`[in a code span](docs/also-missing.md)`\n\n"
        "```\n[in a code block](docs/also-missing.md)\n```\n",
        encoding="utf-8",
    )

    # When they are checked
    broken = broken_links(documentation_files(tmp_path), tmp_path)

    # Then exactly the three broken ones are named, with their line
    assert broken == [
        "README.md:4: docs/missing.md (no such file)",
        "README.md:4: docs/api.md#errors (no heading #errors in docs/api.md)",
        "README.md:4: #nope (no heading #nope in README.md)",
    ]


# --- the repository's documentation ---------------------------------------------------------------------------------


def test_given_the_docs_when_every_relative_link_is_followed_then_each_file_and_anchor_exists() -> None:
    # Given README.md, docs/*.md and events/README.md
    files = documentation_files(REPO)
    relative = [link for path in files for link in links_of(path) if is_relative(link.target)]
    assert len(relative) > 50, "the link parser found almost no links: it is broken, not the docs"

    # When every relative link is followed
    broken = broken_links(files, REPO)

    # Then each reaches a file, and each anchor a heading of it
    assert broken == []


def test_given_the_readme_when_its_lines_are_counted_then_it_stays_a_five_minute_read() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()

    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move the detail to a page of docs/"


def test_given_the_readme_when_its_links_are_read_then_it_links_every_page_of_docs() -> None:
    # Given every page of docs/
    pages = docs_pages(REPO)
    assert pages, "docs/ has no page"

    # When the README's links are read
    linked = linked_files(REPO / "README.md")

    # Then each page is one of them
    assert [str(page.relative_to(REPO)) for page in pages if page not in linked] == []


def test_given_the_docs_folder_when_each_page_is_looked_for_then_none_is_orphaned() -> None:
    # Given the pages that the README and the docs index link
    linked = linked_files(REPO / "README.md") | linked_files(REPO / "docs" / "README.md")

    # When each page of docs/ is looked for among them
    orphans = [str(page.relative_to(REPO)) for page in docs_pages(REPO) if page not in linked]

    # Then none is missing
    assert orphans == []
