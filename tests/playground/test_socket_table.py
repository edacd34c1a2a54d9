"""The inspection's table of sockets: rows in narrow columns, an entry that does not fit kept as it is."""

from __future__ import annotations

import socket
import sys

from playground.constants import TCP_SHOWN
from playground.socket_table import Shapes, SocketTable
from playground.worker.snapshot import inspect_socket


def _connected() -> tuple[socket.socket, socket.socket, socket.socket]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    return listener, client, server


def test_entries_read_back_as_the_kernel_gave_them_and_the_ones_past_the_columns_too() -> None:
    socks = _connected()
    try:
        entries = [inspect_socket(s.fileno()) for s in socks]
        assert all(e is not None for e in entries)
        real = [e for e in entries if e is not None]
        table = SocketTable.of(Shapes(), [dict(e) for e in real])
        assert [table.entry(at)["ino"] for at in range(len(table))] == [e["ino"] for e in real]
        assert all(table.shape(at) is not None for at in range(len(table)))  # in rows, not kept aside
        assert [table.entry(at)["local"][1] for at in range(len(table))] == [e["local"][1] for e in real]
        # An inode past 32 bits, a port past 16 (not a socket's, but an entry may say so): kept as given.
        far = dict(real[1], fd=900, ino=1 << 40)
        odd_port = dict(real[2], fd=901, local=("127.0.0.1", 70_000))
        table = table.changed([far, odd_port], [])
        assert table.entry(table.position(900))["ino"] == 1 << 40
        assert table.entry(table.position(901))["local"] == ("127.0.0.1", 70_000)
        assert table.shape(table.position(900)) is None and table.shape(table.position(901)) is None
        assert table.entry(table.position(real[0]["fd"]))["ino"] == real[0]["ino"]
    finally:
        for s in socks:
            s.close()


def test_rows_dropped_a_few_or_many_at_once_keep_their_types_and_the_entries_kept_aside() -> None:
    socks = _connected()
    try:
        entry = inspect_socket(socks[1].fileno())
        assert entry is not None
        rows = [dict(entry, fd=fd, ino=entry["ino"] + fd) for fd in range(10, 210)]
        rows.append(dict(entry, fd=500, ino=1 << 40))  # kept aside
        table = SocketTable.of(Shapes(), rows)
        codes = [getattr(table, name).typecode for name in ("fds", "inos", "lports", "pports")]
        for gone in (range(10, 15), range(15, 110)):  # a few (one memmove each), then many (one pass)
            smaller = table.changed([], list(gone))
            assert [getattr(smaller, n).typecode for n in ("fds", "inos", "lports", "pports")] == codes
            assert smaller.entry(smaller.position(500))["ino"] == 1 << 40
            assert [smaller.entry(at)["ino"] for at in range(len(smaller) - 1)] == [
                entry["ino"] + fd for fd in range(gone.stop, 210)
            ]
            assert not smaller.same(table) and smaller.same(smaller.changed([], []))
            table = smaller
    finally:
        for s in socks:
            s.close()


def test_numbers_past_16_bits_widen_their_column_and_read_back_as_the_kernel_gave_them() -> None:
    listener, client, server = _connected()
    try:
        client.setblocking(False)
        sent = 0
        try:
            while sent < 1 << 20:
                sent += client.send(b"x" * 65536)
        except BlockingIOError:
            pass
        entry = inspect_socket(server.fileno())
        assert entry is not None and entry["inq"] > 0xFFFF  # bytes the server has not read yet
        idle = inspect_socket(listener.fileno())
        assert idle is not None
        table = SocketTable.of(Shapes(), [dict(idle)])
        assert table.inqs.typecode == "H" and table.entry(0)["inq"] == idle["inq"]
        table = table.changed([dict(entry)], [])  # a row put in
        assert table.inqs.typecode == "I" and table.entry(table.position(entry["fd"]))["inq"] == entry["inq"]
        assert table.entry(table.position(idle["fd"]))["inq"] == idle["inq"]  # the other rows as they were
        shown = dict(entry, tcp={k: entry["tcp"][k] for k in TCP_SHOWN})  # (the TCP_INFO fields kept)
        far = dict(shown, fd=70_000, tcp=dict.fromkeys(TCP_SHOWN, 0), outq=None)
        whole = SocketTable.of(Shapes(), [dict(entry), far])  # a table made at once
        assert whole.fds.typecode == "I" and [whole.entry(at) for at in range(2)] == [shown, far]
        assert whole.shape(1) is not None  # in the rows: 0 and None told apart
    finally:
        for s in (listener, client, server):
            s.close()


def test_an_entry_kept_aside_with_a_negative_descriptor_is_kept_too() -> None:
    socks = _connected()
    try:
        entry = inspect_socket(socks[1].fileno())
        assert entry is not None
        odd = {"fd": -1, "socket": False}  # (what a lab process could say of something: kept as it is)
        table = SocketTable.of(Shapes(), [dict(entry), odd])
        assert table.entry(table.position(-1)) == odd and table.entry(table.position(entry["fd"]))["fd"] == entry["fd"]
        again = SocketTable.of(Shapes(), [dict(entry)]).changed([dict(odd)], [])
        assert again.entry(again.position(-1)) == odd
    finally:
        for s in socks:
            s.close()


def test_rows_with_a_value_are_found_in_a_column_of_any_width_and_only_at_whole_numbers() -> None:
    socks = _connected()
    try:
        entry = inspect_socket(socks[1].fileno())
        assert entry is not None
        port = entry["local"][1]
        # two ports whose bytes hold a third across them (little-endian 01 03 | 02 04 holds 0x0203 as 03 02)
        ports = ((3, 0x0301), (4, 0x0402))
        rows = [dict(entry, fd=fd, ino=entry["ino"] + fd, local=("127.0.0.1", p)) for fd, p in ports]
        rows += [dict(entry, fd=fd, ino=entry["ino"] + fd) for fd in range(5, 300)]
        table = SocketTable.of(Shapes(), rows)
        assert table.lports.typecode == "H"
        assert table.rows_with(lports=port) == list(range(2, 297))
        assert table.lports.tobytes()[:4] == bytes([1, 3, 2, 4]) or sys.byteorder == "big"
        assert table.rows_with(lports=0x0203) == [] and table.rows_with(lports=0x0402) == [1]
        assert table.rows_with(lports=-1) == [] and table.rows_with(lports=1 << 40) == []
        assert table.rows_with(fds=299) == [296]
        wide = table.changed([dict(entry, fd=1_000_000, ino=entry["ino"] + 7)], [])  # the descriptor column widens
        assert wide.fds.typecode == "I" and wide.rows_with(fds=1_000_000) == [297]
        assert wide.rows_with(fds=5) == [2]
        # two columns: a server's connections share their local port, each has a peer port of its own
        peer = entry["peer"][1]
        assert table.rows_with(lports=port, pports=peer) == list(range(2, 297))
        assert table.rows_with(pports=peer, lports=port + 1) == []
        spread = SocketTable.of(Shapes(), [dict(rows[2], fd=fd, peer=("127.0.0.1", 2000 + fd)) for fd in range(3, 100)])
        assert spread.rows_with(lports=port, pports=2050) == [47] and spread.rows_with(pports=2050, lports=port) == [47]
        assert spread.rows_with(lports=port, pports=1999) == [] and spread.rows_with(lports=1, pports=2050) == []
        # by shape: the rows whose shape is wanted, and those kept as their entries (which have no shape)
        aside = wide.changed([dict(entry, fd=2, ino=1 << 40)], [])
        assert aside.rows_of_shapes(lambda shape: False) == [0]
        assert aside.rows_of_shapes(lambda shape: shape[1] == socket.SOCK_STREAM) == list(range(len(aside)))
    finally:
        for s in socks:
            s.close()


def test_sockets_at_port_pairs_are_the_same_found_pair_by_pair_or_in_one_pass() -> None:
    from playground.session.view import _PORT_SEARCHES, SocketViews

    socks = _connected()
    try:
        entry = inspect_socket(socks[2].fileno())  # the server's: its local port is the listener's
        assert entry is not None
        local = entry["local"][1]
        rows = [dict(entry, fd=fd, ino=entry["ino"] + fd, peer=("127.0.0.1", 3000 + fd)) for fd in range(3, 203)]
        sockets = SocketViews("a", SocketTable.of(Shapes(), rows), {})
        few = {(local, 3010), (local, 3100), (local + 1, 3020), (local, 9999)}
        many = few | {(local, 4000 + i) for i in range(_PORT_SEARCHES)}  # none of these is a socket's
        assert sockets.at_ports(few) == [7, 97] == sockets.at_ports(many)
        assert [sockets[at].peer for at in sockets.at_ports(few)] == [("127.0.0.1", 3010), ("127.0.0.1", 3100)]
        assert sockets.at_ports(set()) == [] and SocketViews("a", rows[:3], {}).at_ports(few) == [0, 1, 2]
    finally:
        for s in socks:
            s.close()
