"""A process's names as the lab keeps them (playground/lab_names.py): the dict they replaced, in arrays by family."""

from __future__ import annotations

import tracemalloc

import pytest

from playground.lab_names import Names


def test_names_read_as_the_dict_they_replace_in_the_order_first_given() -> None:
    names, plain = Names(), {}
    steps = [("l", 3), ("c[0]", 4), ("c[1]", 5), ("x", 4), ("c[0]", 6), ("c[7]", 9), ("c[07]", 10), ("d[2]", 11)]
    for var, fd in steps:
        names[var] = fd
        plain[var] = fd
    assert names == plain and list(names) == list(plain) and len(names) == len(plain) == 7
    assert names["c[0]"] == 6 and "c[07]" in names and "c[2]" not in names and names.get("c[2]", -5) == -5
    for gone in ("c[0]", "x", "c[07]"):
        del names[gone]
        del plain[gone]
        assert names == plain and list(names) == list(plain)
    names["c[0]"] = 12  # popped and set again: it comes last
    plain["c[0]"] = 12
    assert list(names) == list(plain) and list(names.items()) == list(plain.items())
    with pytest.raises(KeyError):
        names["c[3]"]
    with pytest.raises(KeyError):
        del names["c[3]"]
    assert Names(names) == names and list(Names(names)) == list(names)  # (a fork's child's copy)


def test_the_newest_name_of_a_number_is_the_last_given_whatever_the_names_kinds() -> None:
    names = Names()
    names["c[0]"] = 4
    names["l"] = 4
    names["c[1]"] = 4
    assert names.newest(4) == "c[1]"
    del names["c[1]"]  # the index is made again: the last in the order given
    assert names.newest(4) == "l"
    del names["l"]
    assert names.newest(4) == "c[0]"
    names["c[0]"] = 5  # given anew: it keeps its place, and names 5 now
    assert names.newest(4) is None and names.newest(5) == "c[0]"
    assert dict(names.by_descriptor()) == {5: "c[0]"}


def test_far_indices_and_numbers_past_a_c_int_are_kept_as_given() -> None:
    names = Names()
    names["s[0]"] = 3
    names["s[5000000]"] = 4  # far past the family's arrays: kept beside them
    names["s[1]"] = 2**40  # past a C int
    names["s[2]"] = 6
    names["s[2]"] = -(2**35)  # given a number past a C int after it was kept in the arrays
    assert names == {"s[0]": 3, "s[5000000]": 4, "s[1]": 2**40, "s[2]": -(2**35)}
    assert list(names) == ["s[0]", "s[5000000]", "s[1]", "s[2]"]
    names["s[2]"] = 7
    assert names["s[2]"] == 7 and names.newest(7) == "s[2]"


def test_a_version_counts_every_change() -> None:
    names = Names()
    before = names.version
    names["c[0]"] = 3
    names.pop("c[0]")
    names.pop("c[0]", None)  # (nothing to pop: no change)
    names["l"] = 4
    names.clear()
    assert names.version == before + 4 and not names and len(names) == 0


def test_a_familys_names_keep_no_object_a_name() -> None:
    # 10,000 names of a block's sockets held a str, an int and a dict entry each: 120 bytes a name (issue 13)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        names = Names()
        for k in range(10_000):
            names[f"c[{k}]"] = 300 + k
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 10_000 * 12, held
    assert names["c[9999]"] == 10_299 and len(names) == 10_000 and names.newest(10_299) == "c[9999]"


def test_names_answer_what_a_dict_would_for_any_key_and_pop_the_newest_item() -> None:
    names = Names({"x": 1, "c[1]": 3, "y": 2})
    assert names.get(None) is None and names.get(5, "no") == "no" and 5 not in names
    with pytest.raises(KeyError):
        names[5]  # type: ignore[index]
    assert names.popitem() == ("y", 2) and names.popitem() == ("c[1]", 3) and list(names) == ["x"]
    names.popitem()
    with pytest.raises(KeyError):
        names.popitem()
    names["s[9000]"] = 4  # a family's first name past the arrays' reach: kept as given, no family made
    names["t"] = 5
    assert list(names) == ["s[9000]", "t"] and names.newest(4) == "s[9000]"
