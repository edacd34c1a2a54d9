"""The layers hold, and the tool that checks them would notice if they did not (import-linter, run by make lint)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (pip install -e '.[test]')"
)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in ("playground", "widgets"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_repository_keeps_every_contract() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_inside_a_function_breaks_the_layers(tree: Path) -> None:
    with (tree / "playground" / "runner.py").open("a") as f:
        f.write("\n\ndef _upward() -> None:\n    import widgets.app  # noqa: F401\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "playground.runner -> widgets.app" in result.stdout


def test_the_session_importing_the_tui_breaks_the_layers(tree: Path) -> None:
    with (tree / "playground" / "session" / "view.py").open("a") as f:
        f.write("\nfrom widgets.palette import Palette  # noqa: E402,F401\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "playground.session.view -> widgets.palette" in result.stdout


def test_a_module_outside_every_layer_is_named(tree: Path) -> None:
    (tree / "playground" / "stray.py").write_text('"""A module no layer names."""\n')
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "playground.stray" in result.stdout


def test_the_engine_importing_textual_is_refused(tree: Path) -> None:
    with (tree / "playground" / "events.py").open("a") as f:
        f.write("\nimport textual  # noqa: E402,F401\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "playground.events -> textual" in result.stdout
