"""The event book's lines: rendered once and reused, rendered again whenever what they show changes."""

from __future__ import annotations

from playground.capture import Packet
from playground.session.eventbook import Entry, EventBook
from playground.session.wire import PacketEntry, WireBook

T0 = 1_000_000_000


def test_a_relist_reuses_each_entry_line():
    book = EventBook(T0)
    book.note("hello", T0 + 1_000_000)
    first = book.take_unwritten()
    again = book.relist()
    assert again == first and again[0] is first[0]


def test_a_changed_entry_is_rendered_again():
    book = EventBook(T0)
    entry = book.add_entry(Entry("running", T0, "client", "read(c, 4)", call_id=7))
    [running] = book.take_unwritten(hold_running=False)
    assert running.endswith("read(c, 4) ...")
    entry.kind = "pending"
    book._touch(entry)
    assert book.take_changed() == [(0, book.render(entry))]
    assert book.relist()[0].endswith("read(c, 4) ...   (pending)")


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
