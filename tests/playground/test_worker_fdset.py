"""A lab process's descriptor set (worker.fdset): one byte a descriptor, and what changed since last asked."""

from __future__ import annotations

import threading

from playground.worker.fdset import FdSet


def test_a_descriptor_set_iterates_in_order_and_counts_what_it_holds() -> None:
    fds = FdSet([9, 3, 70_000, 3])
    fds.add(0)
    fds.discard(9)
    fds.discard(12)  # not there: nothing
    assert list(fds) == [0, 3, 70_000] and len(fds) == 3
    assert 3 in fds and 9 not in fds and -1 not in fds and "3" not in fds and 80_000 not in fds
    assert list(fds.starting_at(4)) == [70_000] and list(fds.starting_at(-5)) == [0, 3, 70_000]


def test_changes_are_each_descriptor_added_or_dropped_since_last_asked_and_a_copy_has_seen_none() -> None:
    fds = FdSet([5, 6])
    assert fds.take_changes() == {5, 6}
    fds.add(5)  # already there: a change still (a thread's close of 5 may not be tracked yet)
    fds.add(7)
    fds.discard(6)
    fds.discard(8)
    assert fds.take_changes() == {5, 6, 7}
    assert fds.take_changes() == set()
    child = fds.copy()
    assert list(child) == [5, 7] and child.take_changes() == {5, 7}
    assert fds.take_changes() == set()  # the copy's changes are its own


def test_threads_adding_and_dropping_at_once_leave_the_count_and_the_changes_whole() -> None:
    fds = FdSet()
    fds.add(20_000)  # the array already long: the threads race on flags and count, not on growth alone

    def churn(base: int) -> None:
        for fd in range(base, base + 2000):
            fds.add(fd)
        for fd in range(base, base + 2000, 2):
            fds.discard(fd)

    threads = [threading.Thread(target=churn, args=(k * 2000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(fds) == 4001 == len(list(fds))
    assert fds.take_changes() == set(range(8000)) | {20_000}


def test_the_inspections_sweep_takes_every_descriptor_in_turn_around_to_the_lowest() -> None:
    from playground.worker.snapshot_delta import SWEEP, DeltaInspector

    fds = FdSet(range(10, 10 + 2 * SWEEP + 5))
    delta = DeltaInspector(lambda: None)
    first, second, third = delta._sweep(fds), delta._sweep(fds), delta._sweep(fds)
    assert len(first) == len(second) == len(third) == SWEEP
    assert first + second == list(range(10, 10 + 2 * SWEEP))
    assert third == list(range(10 + 2 * SWEEP, 15 + 2 * SWEEP)) + list(range(10, 10 + SWEEP - 5))
    fds.discard(third[-1] + 1)  # the next one gone: the sweep goes on from the one after
    assert delta._sweep(fds)[0] == third[-1] + 2
    assert DeltaInspector(lambda: None)._sweep(FdSet()) == []
