"""The inspection's table of sockets: rows in narrow columns, an entry that does not fit kept as it is."""

from __future__ import annotations

import socket

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
