"""The house rules of size (issue 10): no module over 700 lines, no class over 400, no function over 80."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO

MODULE_LINES, CLASS_LINES, FUNCTION_LINES = 700, 400, 80
SOURCES = sorted(p for package in ("playground", "widgets") for p in (REPO / package).rglob("*.py"))


def _oversized(path: Path) -> list[str]:
    text = path.read_text()
    found = []
    lines = text.count("\n") + 1
    if lines > MODULE_LINES:
        found.append(f"{path.relative_to(REPO)}: {lines} lines (at most {MODULE_LINES})")
    for node in ast.walk(ast.parse(text)):
        limit = (
            CLASS_LINES
            if isinstance(node, ast.ClassDef)
            else FUNCTION_LINES
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            else None
        )
        if limit is None:
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length > limit:
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.name} is {length} lines (at most {limit})")
    return found


def test_there_are_sources_to_measure() -> None:
    assert len(SOURCES) > 50


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(REPO)) for p in SOURCES])
def test_module_classes_and_functions_stay_small(path: Path) -> None:
    assert _oversized(path) == []
