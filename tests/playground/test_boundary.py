"""The engine never imports the TUI: every playground module loads without textual."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import playground
from tests.conftest import REPO


def test_no_playground_module_imports_textual() -> None:
    names = [m.name for m in pkgutil.walk_packages(playground.__path__, "playground.")]
    assert "playground.lab" in names and "playground.cli" in names
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith(('textual.', 'widgets')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
