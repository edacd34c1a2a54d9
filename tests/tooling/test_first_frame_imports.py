"""What the TUI imports before its first frame: not the script's model, nor the engine (bench/tui_startup.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Made to load later: script.model's 34 frozen dataclasses took ~12 ms to make, the first frame 1.56x
# a minimal Textual app's (target 1.5x); without them, 1.46x.
LATER = ("playground.script.model", "playground.script.format", "playground.outcomes", "playground.lab")

PROBE = f"""
import sys
import widgets.app
print(",".join(name for name in {LATER!r} if name in sys.modules))
"""


def test_the_tuis_module_loads_without_the_scripts_model_or_the_engine() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""  # (each one named here was imported)
