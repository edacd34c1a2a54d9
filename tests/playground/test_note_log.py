"""The calls a session keeps for its ladders (NoteLog): given back as they were kept, the newest `maxlen`."""

from __future__ import annotations

from playground.events import ProcessStarted
from playground.ladder.model import CallNote
from playground.note_log import NoteLog


def _note(i: int) -> CallNote:
    return CallNote(
        t_ns=1_700_000_000_000 + i,
        process="b",
        text=f"s[{i}] = socket(tcp) = {i + 3}",
        sockets=(f"s[{i}]", "l") if i % 3 else (),
        name="connect" if i % 2 else "socket",
        end_ns=1_700_000_000_500 + i,
        blocked=i % 5 == 0,
        defines=f"s[{i}]" if i % 3 else None,
        local=("127.0.0.1", 40000 + i % 20000) if i % 2 else None,
        peer=("::1", 7000) if i % 7 == 0 else None,
        outcome=f"= {i + 3}",
    )


def test_notes_and_events_come_back_in_order():
    log = NoteLog(maxlen=100_000)
    items: list[object] = []
    for i in range(3000):  # several compressed blocks and some pending
        item: object = ProcessStarted(f"p{i}", i, None, i) if i % 500 == 7 else _note(i)
        items.append(item)
        log.append(item)
    assert len(log) == 3000 and log
    assert list(log) == items
    assert [x for x in log if isinstance(x, ProcessStarted)][0] is items[7]  # events are kept as they are


def test_what_marshal_cannot_write_is_kept_as_it_is():
    class Label(str):
        pass

    log = NoteLog(maxlen=10)
    odd = CallNote(1, Label("b"), "close(c) = 0", ("c",), "close", 2, False, None, None, None, "= 0")
    log.append(odd)
    (back,) = list(log)
    assert back is odd


def test_only_the_newest_maxlen_are_kept():
    log = NoteLog(maxlen=1000)
    notes = [_note(i) for i in range(5000)]
    for note in notes:
        log.append(note)
    assert len(log) == 1000
    assert list(log) == notes[-1000:]


def test_clear_forgets_everything():
    log = NoteLog(maxlen=100)
    for i in range(50):
        log.append(_note(i))
    log.clear()
    assert not log and list(log) == []
    log.append(_note(1))
    assert list(log) == [_note(1)]
