"""strace's lines (as strace 6 writes them with -f -yy -T and nanosecond times) read into observed calls."""

from __future__ import annotations

from playground.outside.strace_lines import StraceReader
from playground.outside.strace_text import is_observed

ACCEPT_ENTRY = b"12  1796247024.706871207 accept4(3<TCP:[127.0.0.1:8000]>, "
ACCEPT_RESUMED = (
    b"12  1796247025.706871300 <... accept4 resumed>{sa_family=AF_INET, sin_port=htons(40312), "
    b'sin_addr=inet_addr("127.0.0.1")}, [16], SOCK_CLOEXEC) = 4<TCP:[127.0.0.1:8000->127.0.0.1:40312]> '
    b"<1.000000093>\n"
)


def texts(reader: StraceReader, data: bytes) -> list[str]:
    return [o.text for o in reader.feed(data)]


def test_a_complete_call_in_script_syntax_with_its_start_and_duration() -> None:
    reader = StraceReader()
    (seen,) = reader.feed(
        b'7  1796246991.281165371 recvfrom(5<TCP:[127.0.0.1:60171->127.0.0.1:57402]>, "GET / HTTP/1.0\\r\\n\\r\\n", '
        b"8192, 0, NULL, NULL) = 18 <0.000011517>\n"
    )
    assert seen.text == 'recvfrom(5, "GET / HTTP/1.0\\r\\n\\r\\n", 8192, 0) = 18'
    assert (seen.pid, seen.start_ns, seen.duration_ns, seen.pending) == (7, 1796246991281165371, 11517, False)


def test_addresses_are_written_as_the_script_writes_them() -> None:
    reader = StraceReader()
    data = (
        b'1 1.000000001 connect(4<TCP:[9]>, {sa_family=AF_INET, sin_port=htons(8000), sin_addr=inet_addr("127.0.0.1")}'
        b", 16) = -1 ECONNREFUSED (Connection refused) <0.000010000>\n"
        b"1 1.000000002 bind(5<TCPv6:[10]>, {sa_family=AF_INET6, sin6_port=htons(7000), sin6_flowinfo=htonl(0), "
        b'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0 <0.000010000>\n'
    )
    assert texts(reader, data) == [
        "connect(4, 127.0.0.1:8000) = -1 ECONNREFUSED (Connection refused)",
        "bind(5, [::1]:7000) = 0",
    ]


def test_a_blocking_call_is_pending_only_once_it_stays_in_progress_then_completes_under_the_same_key() -> None:
    reader = StraceReader()
    assert reader.feed(ACCEPT_ENTRY) == []
    assert reader.overdue() == []  # just seen: most calls return within microseconds
    (pending,) = reader.overdue()
    assert (pending.text, pending.pending) == ("accept4(3, ...) ...", True)
    assert reader.overdue() == []  # reported once
    (done,) = reader.feed(b" <unfinished ...>\n" + ACCEPT_RESUMED)
    assert done.text == "accept4(3, ...) = 4 from 127.0.0.1:40312"
    assert done.key == pending.key and done.start_ns == pending.start_ns == 1796247024706871207
    assert done.duration_ns == 1_000_000_093


def test_another_process_interleaving_a_call_in_progress() -> None:
    reader = StraceReader()
    data = (
        ACCEPT_ENTRY + b"<unfinished ...>\n"
        b'13  1796247024.800000000 write(6<UDP:[1]>, "x", 1) = 1 <0.000001000>\n' + ACCEPT_RESUMED
    )
    seen = reader.feed(data)
    assert [(o.pid, o.text) for o in seen] == [
        (13, 'write(6, "x", 1) = 1'),
        (12, "accept4(3, ...) = 4 from 127.0.0.1:40312"),
    ]


def test_signals_and_ends() -> None:
    reader = StraceReader()
    data = (
        b'5 2.000000000 write(3<TCP:[1->2]>, "y", 1) = -1 EPIPE (Broken pipe) <0.000014202>\n'
        b"5 2.000000100 --- SIGPIPE {si_signo=SIGPIPE, si_code=SI_USER, si_pid=5, si_uid=0} ---\n"
        b"5 2.000000200 +++ killed by SIGPIPE +++\n"
        b"6 2.000000300 +++ exited with 3 +++\n"
    )
    seen = reader.feed(data)
    assert [(o.kind, o.text) for o in seen] == [
        ("call", 'write(3, "y", 1) = -1 EPIPE (Broken pipe)'),
        ("signal", "! SIGPIPE"),
        ("end", "killed SIGPIPE"),
        ("end", "exited 3"),
    ]


def test_only_the_calls_on_sockets_are_observed() -> None:
    reader = StraceReader()
    data = (
        b'1 1.000000001 read(3</etc/passwd>, "root", 4) = 4 <0.000001000>\n'
        b"1 1.000000002 close(4<pipe:[77]>) = 0 <0.000001000>\n"
        b"1 1.000000003 close(5<UNIX-STREAM:[88->89]>) = 0 <0.000001000>\n"
        b"1 1.000000004 fcntl(6<TCP:[1]>, F_GETFL) = 0x2 (flags O_RDWR) <0.000001000>\n"
        b"1 1.000000005 socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, IPPROTO_IP) = 7<UDP:[99]> <0.000001000>\n"
    )
    assert texts(reader, data) == [
        "close(5) = 0",
        "fcntl(6, F_GETFL) = 0x2 (flags O_RDWR)",
        "socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, IPPROTO_IP) = 7",
    ]
    assert is_observed("poll", "[{fd=3<TCP:[1]>, events=POLLIN}], 1, 500")
    assert not is_observed("poll", "[{fd=3<pipe:[1]>, events=POLLIN}], 1, 500")


def test_what_is_not_strace_s_is_skipped_and_counted_never_shown() -> None:
    reader = StraceReader()
    data = (
        b"strace: Process 12 attached\n"
        b"\x1b[2J garbage\n"
        b"12 1.000000001 socket(AF_INET, SOCK_STREAM, IPPROTO_IP) = 3<TCP:[5]> <0.000001000>\n"
        b"12 1.000000002 <... accept resumed>) = 4 <0.1>\n"  # resumes nothing
    )
    assert texts(reader, data) == ["socket(AF_INET, SOCK_STREAM, IPPROTO_IP) = 3"]
    assert reader.skipped == 3


def test_data_with_brackets_quotes_and_arrows_stays_data() -> None:
    reader = StraceReader()
    data = (
        b'1 1.000000001 sendto(3<TCP:[1->2]>, "a<b>c) = 9, \\"d\\"->", 13, MSG_NOSIGNAL, NULL, 0) = 13 <0.000001000>\n'
    )
    assert texts(reader, data) == ['sendto(3, "a<b>c) = 9, \\"d\\"->", 13, MSG_NOSIGNAL) = 13']


def test_a_line_fed_a_byte_at_a_time_reads_the_same() -> None:
    whole = ACCEPT_ENTRY + b"<unfinished ...>\n" + ACCEPT_RESUMED
    reader = StraceReader()
    seen = [o.text for i in range(len(whole)) for o in reader.feed(whole[i : i + 1])]
    assert seen == ["accept4(3, ...) = 4 from 127.0.0.1:40312"]


def test_control_characters_in_a_trace_never_reach_the_text() -> None:
    reader = StraceReader()
    (seen,) = reader.feed(b'1 1.000000001 write(3<TCP:[1]>, "\x1b[2J\xe2\x80\xae", 5) = 5 <0.000001000>\n')
    assert seen.text.isprintable() and "\\x1b" in seen.text
