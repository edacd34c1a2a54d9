"""The event book's lines: rendered once and reused, rendered again whenever what they show changes."""

from __future__ import annotations

from playground.capture import Packet
from playground.events import CallPending, CallStarted, PacketsSeen
from playground.packet_log import PacketLog
from playground.script.parser import parse_script
from playground.session.entrystore import WIDEST, EntryStore
from playground.session.eventbook import Entry, EventBook, find_next
from playground.session.wire import PacketEntry, WireBook

T0 = 1_000_000_000


def test_a_relist_reuses_each_entry_line():
    book = EventBook(T0)
    book.note("hello", T0 + 1_000_000)
    first = book.take_unwritten()
    again = book.relist()
    assert list(again) == first and again[0] is first[0]


def test_a_changed_entry_is_rendered_again():
    book = EventBook(T0)
    book.note("before", T0)
    read = parse_script("sockplay 1\nspawn client\nclient: c = socket(tcp)\nclient: read(c, 4)\n").lines[-1].node
    book.add(CallStarted(7, "client", read, "client: read(c, 4)", T0))
    [_, running] = book.take_unwritten(hold_running=False)
    assert running.endswith("read(c, 4) ...")
    book.add(CallPending(7, "client", "client: read(c, 4)", T0))
    [(position, pending)] = book.take_changed()
    assert position == 1 and book.lines[1] == pending and pending.endswith("read(c, 4) ...   (pending)")
    assert book.relist()[1] == pending


def test_hex_and_the_clock_change_every_line():
    book = EventBook(T0)
    book.add_entry(Entry("ok", T0 + 2_000_000, "client", 'write(c, "hi") = 2', data=b"hi"))
    [plain] = book.take_unwritten()
    assert "hex" not in plain and "2.000" in plain
    book.hex = True
    [hexed] = book.relist()
    assert hexed.endswith("│ hex 68 69")
    book.t0 = T0 + 1_000_000
    [later] = book.relist()
    assert "1.000" in later and "2.000" not in later


def test_a_packet_line_follows_the_names_the_lab_gives_its_sockets():
    book = WireBook(T0)
    packet = Packet(T0, "TCP", ("127.0.0.1", 40000), ("127.0.0.1", 50000), 0, flags=("SYN",))
    book.add_entry(PacketEntry("packet", packet.t_ns, None, "", packet=packet))
    [before] = book.take_unwritten(hold_running=False)
    assert "127.0.0.1:40000 > 127.0.0.1:50000 SYN" in before
    packet.src_label, packet.dst_label = "client.c", "server.l"
    [after] = book.relist()
    assert "client.c > server.l SYN" in after


def _wire_book() -> WireBook:
    """Two calls of b's and one of a's, each followed by a packet, then a notice."""
    book = WireBook(T0)
    for i, (process, body, fds) in enumerate(
        (("b", "s = socket(tcp) = 3", (3,)), ("b", "connect(s, a.l) = 0", (3,)), ("a", "c = accept(l) = 4", (3, 4)))
    ):
        book.add_entry(Entry("ok", T0 + 10 * i, process, body, fds, call_id=i))
        packet = Packet(T0 + 10 * i + 1, "TCP", ("127.0.0.1", 40000), ("127.0.0.1", 50000), 0, flags=("SYN",))
        packet.src_label, packet.dst_label = f"{process}.s", "a.l"
        book.add_entry(PacketEntry("packet", packet.t_ns, None, "", packet=packet))
    book.note("a notice", T0 + 100)
    return book


def test_the_views_and_filters_list_the_lines_they_match_in_order():
    book = _wire_book()
    every = book.take_unwritten()
    assert len(every) == 7 and list(book.lines) == every
    calls, packets = [line for line in every if "⇢" not in line], [line for line in every if "⇢" in line]
    book.show = "calls"
    assert list(book.relist()) == calls
    book.show = "packets"
    assert list(book.relist()) == packets
    book.show = "both"
    assert list(book.set_filter("b")) == [line for line in every if " b " in line or "notice" in line]
    assert list(book.set_filter("a", 4)) == [line for line in every if " a " in line or "notice" in line]
    assert list(book.set_filter("a", 9)) == [every[5], every[6]]  # a's packet has no descriptor: it stays
    book.show = "calls"
    assert list(book.set_filter("b")) == [calls[0], calls[1], calls[3]]
    assert book.widest == max(map(len, book.lines))
    assert list(book.set_filter(None)) == calls


def test_a_search_finds_matches_over_every_shown_line_and_wraps():
    book = _wire_book()
    book.take_unwritten()
    matches = book.matches("SYN")
    assert list(matches) == [1, 3, 5]
    assert list(book.matches("syn", matches)) == [1, 3, 5] and list(book.matches("accept")) == [4]
    assert find_next(matches, 7, 7) == 5 and find_next(matches, 5, 7) == 3 and find_next(matches, 1, 7) == 5
    assert find_next(matches, 5, 7, backwards=False) == 1 and find_next(matches, 0, 7, backwards=False) == 1
    assert find_next([], 3, 7) is None


def test_entries_are_read_back_as_they_were_added():
    book = _wire_book()
    book.take_unwritten()  # a packet added with no process is given its owner when its line is made
    entries = list(book.entries)
    assert [e.kind for e in entries] == ["ok", "packet"] * 3 + ["notice"]
    assert (entries[4].process, entries[4].body, entries[4].fds, entries[4].call_id) == (
        "a",
        "c = accept(l) = 4",
        (3, 4),
        2,
    )
    assert isinstance(entries[5], PacketEntry) and entries[5].packet is not None and entries[5].process == "a"
    assert book.entries[-1].body == "a notice" and len(book.entries) == 7


def _udp(t_ns: int, port: int) -> Packet:
    return Packet(t_ns, "UDP", ("127.0.0.1", port), ("127.0.0.1", 9), 3, (), src_label=f"a.u{port}")


def test_packet_lines_keep_serials_into_each_labs_log_and_say_when_one_is_gone() -> None:
    """A packet's entry keeps its serial in the lab's packet log, not the packet; a restart's new lab numbers
    its packets from 0 again, and the book tells the two logs apart; a packet past the log's newest says so."""
    book = WireBook(0)
    first = PacketLog(10)
    book.packets_from(first.get)
    book.add(PacketsSeen([first.add(_udp(1_000_000, 1000 + i)) for i in range(3)], 0))
    second = PacketLog(10)  # (a restart)
    book.packets_from(second.get)
    book.add(PacketsSeen([second.add(_udp(2_000_000, 2000 + i)) for i in range(2)], 0))
    assert book.packets == []  # nothing kept but numbers
    lines = list(book.relist())
    assert [line.split("a.u")[1][:4] for line in lines] == ["1000", "1001", "1002", "2000", "2001"]
    for i in range(10):  # the first lab's log moves on past its newest 10
        first.add(_udp(3_000_000, 3000 + i))
    lines = list(book.relist())
    assert all("(a packet no longer kept)" in line for line in lines[:3])
    assert [line.split("a.u")[1][:4] for line in lines[3:]] == ["2000", "2001"]


def test_a_packet_line_past_the_ones_the_lab_may_rename_keeps_its_text() -> None:
    """Once 256 newer packets came, a packet's line is final: kept as text, whatever the packet log drops later."""
    book = WireBook(0)
    log = PacketLog(1000)
    book.packets_from(log.get)
    book.add(PacketsSeen([log.add(_udp(1_000_000 + i, 1000 + i)) for i in range(300)], 0))
    for i in range(1000):  # the log moves on past every packet the book listed
        log.add(_udp(5_000_000 + i, 9000))
    lines = list(book.relist())
    assert [line.split("a.u")[1][:4] for line in lines[:44]] == [str(1000 + i) for i in range(44)]
    assert all("(a packet no longer kept)" in line for line in lines[44:])


def test_columns_start_narrow_and_widen_when_a_value_does_not_fit() -> None:
    store = EntryStore()
    store.append(Entry("ok", 1, "a", "short", call_id=7, duration_ns=1_000))
    assert (store.durations.typecode, store.call_ids.typecode, store.procs.typecode) == ("i", "i", "B")
    assert (store.fds.typecode, store.text_len.typecode) == ("h", "H")
    far = store.append(Entry("ok", 2, "a", "x" * 70_000, fds=(3, 40_000)))  # past 16 bits: a long text, a far fd
    assert store.entry(far).fds == (3, 40_000) and store.text(far) == "x" * 70_000
    assert (store.fds.typecode, store.text_len.typecode) == ("i", "I")
    long_call = store.append(Entry("ok", 2, "a", "slow", call_id=2**40, duration_ns=5_000_000_000))
    for n in range(70_000):  # more processes (and threads) than 16 bits number
        store.name_code(f"p{n}")
    late = store.append(Entry("ok", 3, "p69999", "late"))
    assert store.entry(0) == Entry("ok", 1, "a", "short", call_id=7, duration_ns=1_000)
    assert store.entry(long_call) == Entry("ok", 2, "a", "slow", call_id=2**40, duration_ns=5_000_000_000)
    assert store.process(late) == "p69999" and store.text(late) == "late"
    assert store.durations.typecode == "q" and store.call_ids.typecode == "q" and store.procs.typecode == "I"


def test_a_line_wider_than_the_widths_column_holds_counts_as_its_widest() -> None:
    book = EventBook(0)
    book.add_entry(Entry("ok", 1, "a", "x" * 70_000))
    book.add_entry(Entry("ok", 2, "a", "short"))
    book.relist()
    assert book.widest == WIDEST and book.store.widths[0] == WIDEST and 0 < book.store.widths[1] < 100
    assert book.render_line(0).endswith("x" * 1000)  # the line itself is whole
