"""A family member's name as a code (playground/name_codes.py): it comes back as written, or has none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from playground.name_codes import INDEX_BITS, code_of, family_code, name_of

ROOT = Path(__file__).resolve().parents[2]


def test_a_family_members_name_comes_back_as_written() -> None:
    for name in ("c[0]", "c[7]", "conn[9999]", "_x[123]", f"s[{(1 << INDEX_BITS) - 1}]"):
        code = code_of(name)
        assert code and name_of(code) == name
    assert code_of("c[7]") == code_of("c[7]") != code_of("c[8]") != code_of("d[8]")
    assert code_of("c[7]") >> INDEX_BITS == family_code("c")


def test_a_name_that_would_not_come_back_as_written_has_no_code() -> None:
    for name in (
        "c",  # not in a family
        "c[07]",  # a leading zero: c[7] is another name
        "c[00]",
        "c[]",
        "[3]",
        "c[-1]",
        "c[1][2]",  # a base that is not an identifier
        "c d[1]",
        "é[1]",  # an identifier, but not ASCII
        "c[١]",  # digits, but not ASCII ones
        f"c[{1 << INDEX_BITS}]",  # past the index's bits
        "c[123456789012]",
        "c[*]",
    ):
        assert code_of(name) == 0, name


PAST_THE_FAMILIES = """
from playground.name_codes import code_of, family_code, name_of
first = code_of("kept[1]")
for k in range(300):
    code_of(f"family{k}[0]")
assert family_code("one_more_family") == 0 and code_of("one_more_family[3]") == 0
assert code_of("kept[1]") == first and name_of(first) == "kept[1]"
assert name_of(code_of("family253[4]")) == "family253[4]" and code_of("family254[4]") == 0
"""


def test_families_past_the_255th_have_no_code_and_the_first_keep_theirs() -> None:
    # In a process of its own: the numbering is the process's, and this one fills it.
    done = subprocess.run([sys.executable, "-c", PAST_THE_FAMILIES], cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
