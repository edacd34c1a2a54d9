"""A traced program's sockets, first-class and read-only: named on the wire, in the ladder and in the Lab view.

Real programs under the real strace, on the real kernel: a Python client, http.server, and a C
client compiled here when a compiler exists.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from playground.events import CallObserved
from playground.executor import run_typed_line
from playground.lab import Lab
from playground.ladder import LadderRecorder
from playground.outside.sockets import call_facts, facts_written
from playground.outside.strace_lines import StraceReader
from playground.runner import Runner
from playground.script.parser import parse_script
from playground.session.view import build_view
from tests.helpers import whole_calls
from tests.playground.test_outside import (
    GCC,
    needs_gcc,
    needs_strace,
    observed,
    recorder,
    wait_for,
)

# The course's graceful-shutdown client: it waits for the server's greeting, sends its request,
# shuts down its writing side, reads until end of file, and closes.
CLIENT = (
    "import socket, sys\\n"
    "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\\n"
    "assert s.recv(100) == b'hi'\\n"
    "s.sendall(b'bye')\\n"
    "s.shutdown(socket.SHUT_WR)\\n"
    "while s.recv(100):\\n"
    "    pass\\n"
    "s.close()"
)

SCRIPT = """\
sockplay 1
spawn server
server: l = socket(tcp)                  = 3
server: bind(l, 127.0.0.1:0)             = 0
server: listen(l, 8)                     = 0
spawn client exec --trace {python} -c "{client}" {port}
server: a = accept(l)                    = 4
server: write(a, "hi")                   = 2
~ client > server.a ACK len 3
~ client > server.a FIN
server: poll(a, POLLRDHUP, 5000)         = 1 POLLRDHUP
server: read(a, 100)                     = 3 "bye"
server: read(a, 100)                     = 0
server: close(a)                         = 0
~ server.a > client FIN
~ client > server.a ACK
"""


async def run_client(lab: Lab, command: str) -> LadderRecorder:
    """The lab server of SCRIPT, and `command` (a traced client given the server's port) talking to it."""
    ladders = LadderRecorder(lab)
    runner = Runner(lab)
    head = parse_script("sockplay 1\nspawn server\n" + "\n".join(SCRIPT.splitlines()[2:5]) + "\n")
    reports = [await runner.run_line(line) for line in head.lines]
    port = lab.processes["server"].addresses["l"].port
    rest = SCRIPT.format(python=sys.executable, client=CLIENT, port=port)
    if command != "python":
        rest = rest.replace(f'{sys.executable} -c "{CLIENT}" {port}', f"{command} {port}")
    lines = parse_script(rest).lines[4:]  # from the client's spawn on
    assert [line.text.split()[1] for line in lines[:1]] == ["client"]
    reports += [await runner.run_line(line) for line in lines]
    assert [(r.line.text, r.divergence or r.error) for r in reports if r.divergence or r.error] == []
    await wait_for(lambda: lab.processes["client"].death is not None, 20, "the client to end")
    await ladders.settle()
    return ladders


def client_ladder(ladders: LadderRecorder):
    found = [ladder for ladder in ladders.ladders if ladder.columns[0].label == "client.3"]
    assert len(found) == 1, [ladder.title for ladder in ladders.ladders]
    return found[0]


@needs_strace
async def test_a_traced_clients_packets_and_calls_are_named_by_its_descriptors(exec_lab: Lab) -> None:
    events = recorder(exec_lab)
    if exec_lab.capture is None:
        pytest.skip(f"no packet capture here: {exec_lab.capture_reason}")
    ladders = await run_client(exec_lab, "python")
    # On the wire: its socket is `client.3`, the descriptor its observed calls name.
    sent = [p for p in exec_lab.packets if p.src_label == "client.3"]
    assert sent and sent[0].flags == ("SYN",) and sent[0].dst_label == "server.a"
    assert all(p.dst_label == "client.3" for p in exec_lab.packets if p.src_label == "server.a")
    # Its connect's event says which socket, where it is, and the descriptor it acts on.
    connect = next(e for e in events if isinstance(e, CallObserved) and e.name == "connect" and not e.pending)
    assert connect.fds == (3,) and connect.local == sent[0].src
    # The ladder: its calls beside its column, the lab server's beside the other, in time order.
    ladder = client_ladder(ladders)
    assert ladder.title == "client.3 ⇄ server.a"
    # (a call that ran a millisecond or more with a segment inside it is drawn in two rows: joined here;
    # a close preempted on a loaded machine while its FIN wakes the peer does)
    calls = [(row.side, row.text) for row in ladder.rows if row.kind == "call"]
    mine = whole_calls(ladder, 0)
    assert any(t.startswith("connect(3, 127.0.0.1:") for t in mine)
    assert 'sendto(3, "bye", 3, 0) = 3' in mine and "shutdown(3, SHUT_WR) = 0" in mine
    assert mine[-1] == "close(3) = 0"
    theirs = whole_calls(ladder, 1)
    assert 'write(a, "hi") = 2' in theirs and "close(a) = 0" in theirs
    order = [text for _side, text in calls]
    assert order.index("shutdown(3, SHUT_WR) = 0") < next(i for i, t in enumerate(order) if t.startswith("close(a)"))
    # The client half-closed first: it ends in TIME-WAIT, the server's end CLOSED.
    assert "FIN-WAIT-1" in ladder.history(0) and ladder.states == ("TIME-WAIT", "CLOSED")
    assert observed(events)  # (its calls reached the event log as observed lines too)


C_CLIENT = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char buf[100];
    if (connect(s, (struct sockaddr *)&to, sizeof to) || read(s, buf, sizeof buf) != 2) return 2;
    write(s, "bye", 3);
    shutdown(s, SHUT_WR);
    while (read(s, buf, sizeof buf) > 0) {}
    close(s);
    return 0;
}
"""


@needs_strace
@needs_gcc
async def test_a_c_client_compiled_here_is_watched_the_same_way(exec_lab: Lab, tmp_path: Path) -> None:
    if exec_lab.capture is None:
        pytest.skip(f"no packet capture here: {exec_lab.capture_reason}")
    source = tmp_path / "client.c"
    source.write_text(C_CLIENT)
    binary = tmp_path / "client"
    assert GCC is not None
    subprocess.run([GCC, "-O1", "-o", str(binary), str(source)], check=True, timeout=120)
    os.chmod(tmp_path, 0o755)  # the lab's user may be another one
    ladders = await run_client(exec_lab, str(binary))
    ladder = client_ladder(ladders)
    mine = [row.text for row in ladder.rows if row.kind == "call" and row.side == 0]
    assert mine[0].startswith("socket(AF_INET, SOCK_STREAM, IPPROTO_IP) = 3")
    assert 'write(3, "bye", 3) = 3' in mine and "shutdown(3, SHUT_WR) = 0" in mine and mine[-1] == "close(3) = 0"


@needs_strace
async def test_its_sockets_are_in_the_lab_view_with_the_kernels_state_and_options(exec_lab: Lab) -> None:
    events = recorder(exec_lab)
    await run_typed_line(exec_lab, f"spawn web exec --trace {sys.executable} -m http.server 0 --bind 127.0.0.1")
    await wait_for(lambda: any("listen(3, " in text for text in observed(events)), 20, "the server to listen")
    snapshot = await exec_lab.inspect()
    view = build_view(exec_lab, snapshot, {}, {})
    web = view.process("web")
    assert web is not None and web.outside and web.alive
    (listener,) = [s for s in web.sockets if s.fd == 3]
    assert listener.observed and listener.wire_name == "web.3"
    assert listener.listening and listener.shown_state == "LISTEN" and listener.local is not None
    assert listener.local[0] == "127.0.0.1" and listener.local[1] > 0
    assert listener.options.get("SO_REUSEADDR") == 1  # http.server's allow_reuse_address, read from the kernel
    # A lab client connects: the program's packets name its listener until its accept is seen.
    port = listener.local[1]
    await run_typed_line(exec_lab, "spawn client")
    await run_typed_line(exec_lab, "client: c = socket(tcp)")
    await run_typed_line(exec_lab, f"client: connect(c, 127.0.0.1:{port})")
    await wait_for(lambda: any("accept4(3, ...) = 4" in t for t in observed(events)), 20, "the accept")
    view = build_view(exec_lab, await exec_lab.inspect(), {}, {})
    web = view.process("web")
    assert web is not None
    accepted = [s for s in web.sockets if s.fd == 4]
    if accepted:  # (http.server may have answered and closed it already)
        assert accepted[0].peer is not None and accepted[0].observed
    if exec_lab.capture is not None:
        await wait_for(
            lambda: any(p.src_label == "client.c" and p.dst_label == "web.4" for p in exec_lab.packets),
            5,
            "the connection's packets named by the accepted socket",
        )


def test_a_calls_descriptors_are_read_from_its_observed_text() -> None:
    assert call_facts("accept4", "accept4(3, ...) = 4 from 127.0.0.1:40312") == ((3,), 4, "= 4 from 127.0.0.1:40312")
    assert call_facts("socket", "socket(AF_INET, SOCK_STREAM, IPPROTO_IP) = 3") == ((), 3, "= 3")
    assert call_facts("write", 'write(4, "a, b) = 1", 6) = 6') == ((4,), None, "= 6")
    assert call_facts("connect", "connect(5, 127.0.0.1:80) = -1 EINPROGRESS (x)")[:2] == ((5,), None)
    assert call_facts("dup2", "dup2(3, 7) = 7") == ((3,), 7, "= 7")
    assert call_facts("poll", "poll([{fd=3, events=POLLIN}], 1, -1) = 1")[:2] == ((), None)


def test_the_reader_gives_each_call_the_facts_its_text_says() -> None:
    """The reader hands over each call's arguments and outcome as it wrote them: the same facts the text says."""
    lines = (
        "7 1700000000.000000001 socket(AF_INET, SOCK_STREAM, IPPROTO_IP) = 3<socket:[501]> <0.000010>\n"
        '7 1700000000.000000002 write(3<socket:[501]>, "a, b) = 1", 6) = 6 <0.000010>\n'
        "7 1700000000.000000003 accept4(3<socket:[501]>, {sa_family=AF_INET, sin_port=htons(40312), "
        'sin_addr=inet_addr("127.0.0.1")}, [16], SOCK_CLOEXEC) = 4<socket:[502]> <0.000010>\n'
        "7 1700000000.000000004 connect(5<socket:[503]>, {sa_family=AF_INET, sin_port=htons(80), "
        'sin_addr=inet_addr("127.0.0.1")}, 16) = -1 EINPROGRESS (Operation now in progress) <0.000010>\n'
        "7 1700000000.000000005 dup2(3<socket:[501]>, 7) = 7<socket:[501]> <0.000010>\n"
        "7 1700000000.000000006 poll([{fd=3<socket:[501]>, events=POLLIN}], 1, -1) = 1 ([{fd=3, revents=POLLIN}]) "
        "<0.000010>\n"
        "7 1700000000.000000007 close(4<socket:[502]>) = 0 <0.000010>\n"
        '7 1700000000.000000008 sendto(3<socket:[501]>, "\\x1b[2J", 4, 0, NULL, 0) = 4 <0.000010>\n'
    )
    seen = StraceReader().feed(lines.encode())
    assert len(seen) == 8
    for call in seen:
        assert call.outcome is not None
        assert facts_written(call.name, call.args, call.outcome) == call_facts(call.name, call.text), call.text
    assert facts_written(seen[2].name, seen[2].args, seen[2].outcome) == ((3,), 4, "= 4 from 127.0.0.1:40312")


def test_strace_names_each_sockets_inode_and_the_programs_data_cannot_forge_one() -> None:
    reader = StraceReader()
    lines = (
        "7 1700000000.000000001 socket(AF_INET, SOCK_STREAM, IPPROTO_IP) = 3<socket:[501]> <0.000010>\n"
        '7 1700000000.000000002 write(3<socket:[501]>, "9<socket:[666]>", 15) = 15 <0.000010>\n'
        "7 1700000000.000000003 accept4(3<socket:[501]>, NULL, NULL, 0) = 4<socket:[502]> <0.000010>\n"
    )
    seen = reader.feed(lines.encode())
    assert [s.inodes for s in seen] == [((3, 501),), ((3, 501),), ((3, 501), (4, 502))]


@needs_strace
async def test_a_connection_the_program_accepted_and_closed_at_once_is_still_named(exec_lab: Lab) -> None:
    """http.server answers an HTTP/1.0 request and closes before its accept4 line is read: the accepted socket's
    ends come from the call's `from ADDRESS` and the packets the peer sent to the listener's port."""
    if exec_lab.capture is None:
        pytest.skip(f"no packet capture here: {exec_lab.capture_reason}")
    events = recorder(exec_lab)
    await run_typed_line(exec_lab, f"spawn web exec --trace {sys.executable} -m http.server 8765 --bind 127.0.0.1")
    await wait_for(lambda: any("listen(3, " in text for text in observed(events)), 20, "the server to listen")
    await run_typed_line(exec_lab, "spawn client")
    for line in ("c = socket(tcp)", "connect(c, 127.0.0.1:8765)", 'write(c, "GET / HTTP/1.0\\r\\n\\r\\n")'):
        await run_typed_line(exec_lab, f"client: {line}")
    await run_typed_line(exec_lab, "client: poll(c, POLLRDHUP, 5000)")  # the server's FIN: it has closed
    await wait_for(lambda: any("shutdown(4, SHUT_WR)" in t for t in observed(events)), 10, "the answer")
    await wait_for(
        lambda: {p.src_label for p in exec_lab.packets if p.dst_label == "client.c"} == {"web.4"},
        5,
        "every packet to the client named web.4 (none web.3, the listener)",
    )
    assert {p.dst_label for p in exec_lab.packets if p.src_label == "client.c"} == {"web.4"}
