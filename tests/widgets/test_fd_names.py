"""The session's names by descriptor (playground/session/names.py): a list by descriptor, a dict for far ones."""

from __future__ import annotations

import sys

from playground.session.families import compact_names
from playground.session.names import FdVars, SortedNames


def test_a_far_descriptor_the_list_grows_past_is_still_one_name() -> None:
    names = FdVars()
    names[2000] = "old"  # far above the list: kept beside it
    for fd in range(3, 1500):
        names[fd] = f"c[{fd}]"
    names[2100] = "far"  # the list grows past 2000
    assert names[2000] == "old"
    names[2000] = "new"
    assert names[2000] == "new" and list(names).count(2000) == 1
    assert len(names) == len(list(names)) == 1497 + 2
    del names[2000]
    assert 2000 not in names and len(names) == 1498
    copy = FdVars(names)  # (how a fork copies its parent's names)
    assert dict(copy) == dict(names)


def test_it_compares_as_the_dict_it_stands_for() -> None:
    names = FdVars({3: "l", 4: "a", 100_000: "d"})
    assert names == {3: "l", 4: "a", 100_000: "d"}
    del names[4]
    assert names == {3: "l", 100_000: "d"} and names.get(4) is None


def test_a_processs_names_are_compacted_once_and_the_text_goes_with_them() -> None:
    pairs = [("l", 3)] + [(f"c[{i}]", 4 + i) for i in range(300)]
    names = SortedNames(pairs)
    held = sys.getrefcount(names)
    text = compact_names(names)
    assert text == "c[0..299] (300), l=3"
    assert compact_names(names) is text  # made once
    assert sys.getrefcount(names) == held  # kept by the names, not by a table that keeps old names alive
    assert compact_names(tuple(sorted(pairs))) == text  # any sequence of pairs: the same text, made anew
    assert compact_names(SortedNames(pairs[:2])) == "c[0]=4, l=3"
