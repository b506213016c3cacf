"""The architecture is checked, not just described: import-linter's contracts (``[tool.importlinter]`` in
pyproject.toml, run by ``make lint``) hold on the tree, and break when a rule is broken."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

LAYER = Path("layers/shared/python/motorhead")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{root / 'layers/shared/python'}:{root}"}
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the layer, the functions and the contracts, to break on purpose."""
    shutil.copytree(REPO / LAYER, tmp_path / LAYER, ignore=shutil.ignore_patterns("__pycache__", "tiktoken_cache"))
    shutil.copytree(REPO / "functions", tmp_path / "functions", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_contracts_given_the_tree_as_it_is_all_hold(tree: Path) -> None:
    # Given the code as committed / When the contracts are checked / Then every one is kept
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("layers/shared/python/motorhead/core/values.py", "import redis", "The core imports no SDK"),
        (
            "layers/shared/python/motorhead/core/memory.py",
            "from motorhead.adapters.redis_db.keys import Keys",
            "Layers",
        ),
        (
            "layers/shared/python/motorhead/adapters/sqs/job_queue.py",
            "from motorhead.adapters.redis_db.keys import session_tag",
            "Each adapter talks to one outside system",
        ),
        (
            "functions/get_memory/app.py",
            "from motorhead.composition.long_term import retrieval_service",
            "No HTTP memory function's import graph",
        ),
    ],
)
def test_contracts_given_a_forbidden_import_fail_naming_the_rule(
    tree: Path, module: str, line: str, broken: str
) -> None:
    # Given one import that breaks a rule
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    # When the contracts are checked / Then the check fails and names the rule that broke
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "Broken contracts" in result.stdout, result.stdout
    assert broken in result.stdout.split("Broken contracts", 1)[1], result.stdout
