"""The session's names by descriptor (playground/session/names.py): a list by descriptor, a dict for far ones."""

from __future__ import annotations

import os
import sys

from playground.lab_process import Process
from playground.name_codes import natural_key
from playground.session.families import compact_names
from playground.session.names import FdNames, FdVars, NameList, SortedNames
from playground.session.view import socket_names


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


def test_columns_list_every_descriptor_ascending_with_its_name_and_a_copy_is_apart() -> None:
    names = FdVars({7: "b[1]", 3: "a", 50_000: "far[2]", 8: "c[0]"})
    names[5000] = "d[3]"  # far above the array too: kept in the dict
    fds, codes, odd = names.columns()
    variables = NameList(codes=codes, odd=odd)
    assert list(fds) == [3, 7, 8, 5000, 50_000] and variables == ["a", "b[1]", "c[0]", "d[3]", "far[2]"]
    assert odd == {0: "a", 3: "d[3]", 4: "far[2]"}  # a name without a code, and far descriptors', kept as strs
    assert sorted(names.items()) == list(zip(fds, variables, strict=True))
    copy = names.copy()
    copy[3] = "changed"
    del copy[50_000]
    assert names[3] == "a" and names[50_000] == "far[2]" and len(names) == 5 and len(copy) == 4


def test_a_views_names_are_the_newest_of_each_number_unless_the_session_saw_another_named_last() -> None:
    proc = Process(name="p", pid=os.getpid())
    for var, fd in (("l", 3), ("a", 4), ("b", 4), ("c[0]", 5)):
        proc.names[var] = fd
    assert dict(FdNames(socket_names(proc, None))) == {3: "l", 4: "b", 5: "c[0]"}  # b is 4's newest name
    tracked = FdVars({4: "a", 6: "gone"})  # the session saw a named last; gone names nothing now
    assert dict(FdNames(socket_names(proc, tracked))) == {3: "l", 4: "a", 5: "c[0]"}
    assert dict(FdNames(socket_names(None, tracked))) == {4: "a", 6: "gone"}  # (a process that ended)
    assert proc.names.newest(4) == "b"  # the lab's own index is not changed by the view's copy
    in_order = (("a", 4), ("b", 4), ("c[0]", 5), ("l", 3))
    assert SortedNames(proc.names) == SortedNames(list(proc.names.items())) == in_order


def test_a_familys_indices_are_kept_in_c_ints_unless_one_is_past_them() -> None:
    from array import array

    from playground.session.families import _narrow

    assert _narrow(array("q", [0, 7, 2**31 - 1])) == array("i", [0, 7, 2**31 - 1])
    assert _narrow(array("q", [0, 7, 2**31 - 1])).typecode == "i"
    assert _narrow(array("q", [0, 2**40])).typecode == "q"  # (an index a name may be written with)


def test_a_processs_names_sort_naturally_the_same_from_the_lab_as_from_pairs() -> None:
    import random

    from playground.lab_names import Names

    rng = random.Random(3)
    for _ in range(50):
        names = Names()
        for _ in range(rng.randrange(1, 40)):
            var = rng.choice(["l", "z", "c", "ca", "cZ", "b_2", f"c[{rng.randrange(30)}]", f"s[{rng.randrange(300)}]"])
            names[var] = rng.randrange(3, 500)
        expected = sorted(names.items(), key=lambda pair: natural_key(pair[0]))
        assert SortedNames(names) == SortedNames(list(names.items())) == tuple(expected)
    names = Names({"c[10]": 5, "c[2]": 4, "c": 3, "ca": 6, "c[07]": 9})  # c[07]: a family's name kept as a str
    assert [var for var, _ in SortedNames(names)] == ["c", "c[2]", "c[07]", "c[10]", "ca"]
    assert names.natural() is None  # (sorted as strs, as pairs are)
    del names["c[07]"]
    assert names.natural() is not None and [var for var, _ in SortedNames(names)] == ["c", "c[2]", "c[10]", "ca"]


def test_names_kept_as_codes_or_strs_compare_by_what_they_say() -> None:
    far = FdNames(FdVars({100_000: "c[1]", 3: "l", 4: "c[2]"}))  # a far descriptor's name kept as a str
    near = FdNames({100_000: "c[1]", 3: "l", 4: "c[2]"})
    assert far.vars.odd != near.vars.odd and far == near
    assert far != FdNames({100_000: "c[3]", 3: "l", 4: "c[2]"}) and far != FdNames({100_000: "c[1]", 3: "l", 4: "c[9]"})
