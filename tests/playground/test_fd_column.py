"""What the lab knows of each named socket, kept by descriptor (fd_column): it reads as the dict it replaces."""

from __future__ import annotations

from playground.fd_column import inode_column
from playground.lab_names import Names
from playground.lab_process import Process
from playground.script.model import Address


def test_a_value_stays_with_its_name_when_the_number_is_taken_again_or_the_name_moves() -> None:
    names = Names()
    inodes = inode_column(names)
    names["a"] = 3
    inodes["a"] = 1001
    names["b"] = 3  # a closed, its number given to b
    inodes["b"] = 1002
    assert (inodes["a"], inodes["b"], inodes.get("c")) == (1001, 1002, None)
    names.pop("a")
    names["a"] = 4  # a named anew (the lab then sets its value, or drops it)
    assert inodes.pop("a", None) == 1001 and "a" not in inodes and inodes.get("a") is None
    inodes["a"] = 1003
    names["c"] = 4  # c takes a's number; a still names 4, so a's value is kept apart
    inodes["c"] = 1004
    assert dict(inodes) == {"a": 1003, "b": 1002, "c": 1004} and len(inodes) == 3
    del inodes["a"]
    assert dict(inodes) == {"b": 1002, "c": 1004}
    inodes["nameless"] = 7  # no descriptor under that name: kept as a dict would
    names["far"] = 100_000  # far above the rest: not an array that long
    inodes["far"] = 1005
    assert (inodes["nameless"], inodes["far"]) == (7, 1005)


def test_addresses_come_back_as_they_were_set_and_a_forks_child_has_its_own_copy() -> None:
    parent = Process("p", 1)
    parent.names["s"] = 5
    parent.names["v6"] = 6
    parent.names["odd"] = 7
    parent.addresses["s"] = Address("127.0.0.1", 40000)
    parent.addresses["v6"] = Address("fe80::1%lo", 0)
    parent.addresses["odd"] = Address(None, 9)  # type: ignore[arg-type]  # not a host string: kept as it is
    child = Process("kid", 2, names=dict(parent.names), addresses=dict(parent.addresses))
    for proc in (parent, child):
        assert proc.addresses["s"] == Address("127.0.0.1", 40000) and proc.addresses["v6"].host == "fe80::1%lo"
        assert proc.addresses["odd"].host is None and proc.addresses["odd"].port == 9
    child.addresses["s"] = Address("127.0.0.2", 1)
    assert parent.addresses["s"].host == "127.0.0.1"
    thread = Process("t", 1, names=parent.names, addresses=parent.addresses)  # a thread: the same objects
    assert thread.addresses is parent.addresses
