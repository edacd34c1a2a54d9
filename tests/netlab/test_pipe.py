"""One direction of a cable, as arithmetic: when each copy of a frame leaves, and which never does."""

from __future__ import annotations

from playground.netlab.impairments import QUEUE_LIMIT, Impairment
from playground.netlab.pipe import LOST_LOSS, LOST_QUEUE, Departure, Pipe

MS = 1_000_000


def pipe(**settings: float) -> Pipe:
    p = Pipe("test")
    p.impairment = Impairment().merged(settings)
    return p


def departures(p: Pipe, count: int) -> list[int]:
    """When each copy of `count` frames (arriving at 0) leaves; the pipe must lose none."""
    out = []
    for _ in range(count):
        admitted = p.admit(0, 100)
        assert isinstance(admitted, list)
        out.extend(d.at_ns for d in admitted)
    return out


def test_a_clear_pipe_lets_a_frame_through_at_once() -> None:
    p = Pipe("test")
    assert p.clear and p.admit(5, 100) == [Departure(5)]
    p.impairment = Impairment(delay_ns=MS)
    assert not p.clear
    p.impairment = Impairment()
    assert p.clear


def test_jitter_stays_within_its_bounds_around_the_delay_and_never_below_zero() -> None:
    p = pipe(delay_ns=10 * MS, jitter_ns=2 * MS)
    times = departures(p, 2000)
    assert min(times) >= 8 * MS and max(times) <= 12 * MS
    assert min(times) < 8.5 * MS and max(times) > 11.5 * MS  # uniform over the whole range
    wide = pipe(delay_ns=1 * MS, jitter_ns=5 * MS)
    assert min(departures(wide, 500)) == 0


def test_reorder_sends_its_share_at_once_and_the_rest_after_the_delay() -> None:
    p = pipe(delay_ns=10 * MS, reorder=25.0)
    times = departures(p, 4000)
    assert set(times) == {0, 10 * MS}
    assert 800 <= times.count(0) <= 1200


def test_rate_spaces_frames_by_their_size_and_drops_past_the_queue_limit() -> None:
    p = pipe(rate=1_000_000)  # 125 bytes take 1 ms
    first, second = p.admit(0, 125), p.admit(0, 125)
    assert first == [Departure(1 * MS, queued=True)] and second == [Departure(2 * MS, queued=True)]
    assert isinstance(first, list)
    p.left(first[0])  # its place in the queue is free once it has gone
    later = p.admit(10 * MS, 125)
    assert later == [Departure(11 * MS, queued=True)]  # an idle link sends at once, plus its own time
    for _ in range(QUEUE_LIMIT - 2):
        assert isinstance(p.admit(10 * MS, 125), list)
    assert p.admit(10 * MS, 125) == LOST_QUEUE and p.counters.lost_queue == 1


def test_loss_and_duplicate_are_counted_and_the_same_seed_decides_the_same() -> None:
    fates = [pipe(loss=50.0, duplicate=50.0) for _ in range(2)]
    runs = [[p.admit(0, 100) for _ in range(1000)] for p in fates]
    assert runs[0] == runs[1]
    lost = runs[0].count(LOST_LOSS)
    doubled = sum(1 for r in runs[0] if isinstance(r, list) and len(r) == 2)
    assert 400 <= lost <= 600 and fates[0].counters.lost_loss == lost
    assert 200 <= doubled <= 300 and fates[0].counters.duplicated == doubled
    assert all(r[1].duplicate for r in runs[0] if isinstance(r, list) and len(r) == 2)
