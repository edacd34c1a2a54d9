"""Benchmarks that start sockplay measure it as installed: with its modules compiled.

An editable install leaves them as source, and with PYTHONDONTWRITEBYTECODE set (as on
this machine) every start would compile them again (`make bytecode` does this too).
"""

from __future__ import annotations

import compileall
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def compile_sources() -> None:
    for package in ("playground", "widgets"):
        compileall.compile_dir(REPO / package, quiet=1)
