"""strace's output (`-f -yy -T --absolute-timestamps=unix,ns`) read into observed calls in the script's syntax.

Each line starts with the pid and the time. A call that has not returned yet is a partial
line at the end of what strace has written so far (it flushes a call's entry); when another
process's line comes first, strace ends it with `<unfinished ...>` and later writes
`<... NAME resumed>` with the rest. Signals are `--- SIGPIPE {...} ---` and ends
`+++ exited with 0 +++` or `+++ killed by SIGPIPE +++`. Anything else (strace's own
messages, a line cut short) is skipped: the program's trace is untrusted text too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from playground.outside.strace_text import call_parts, call_text, is_observed

_HEAD = re.compile(r"(?P<pid>[0-9]{1,10}) +(?P<ts>[0-9]{1,12}\.[0-9]{9}) (?P<rest>.*)\Z", re.S)
_CALL = re.compile(r"(?P<name>[a-z_0-9]{1,40})\((?P<args>.*)\Z", re.S)
_RESUMED = re.compile(r"<\.\.\. (?P<name>[a-z_0-9]{1,40}) resumed>(?P<args>.*)\Z", re.S)
_DURATION = re.compile(r" <(?P<s>[0-9]+)\.(?P<frac>[0-9]{1,9})>\Z")
_SIGNAL = re.compile(r"--- (?P<sig>SIG[A-Z0-9]+|SIGRT_?[0-9]+) .*---\Z", re.S)
_END = re.compile(
    r"\+\+\+ (?:exited with (?P<status>-?[0-9]+)|killed by (?P<sig>SIG[A-Z0-9_]+)(?: \(core dumped\))?) \+\+\+\Z"
)
_UNFINISHED = " <unfinished ...>"
_STRING = re.compile(r'"(?:[^"\\]|\\.)*+"')  # the program's data: never read as strace's decorations
_SOCKET_INODE = re.compile(r"(?<![0-9])([0-9]{1,10})<socket:\[([0-9]{1,20})\]>")

MAX_TRACE_LINE = 1 << 20  # a line longer than this is strace's or the program's mistake: dropped


@dataclass
class Observation:
    """One thing the trace says: a call (pending or done), a signal, or a process's end.

    `key` names a call across its pending and done reports (the same pid and start time).
    """

    pid: int
    start_ns: int  # CLOCK_REALTIME, as strace stamps it
    text: str  # script syntax: `accept4(3, ...) = 4 from 127.0.0.1:40312`, `! SIGPIPE`, `exited 0`
    kind: str = "call"  # "call", "signal" or "end"
    pending: bool = False
    duration_ns: int | None = None
    key: tuple[int, int] | None = None
    name: str = ""
    signal: str | None = None
    inodes: tuple[tuple[int, int], ...] = ()  # (descriptor, socket inode) of each socket strace's -y named
    args: tuple[str, ...] = ()  # a returned call's arguments and outcome as its text writes them
    outcome: str | None = None


@dataclass
class _Open:
    """A call whose entry strace has written and whose result it has not."""

    name: str
    args: str
    start_ns: int
    seen: bool = False  # in progress when `overdue` was last asked
    shown: bool = False  # reported as pending already


class StraceReader:
    """Feed it strace's output as it comes; it gives the observations it can make so far."""

    def __init__(self) -> None:
        self._tail = b""
        self._open: dict[int, _Open] = {}
        self.skipped = 0  # lines that were not strace's syscall lines (counted, not shown)

    def feed(self, data: bytes) -> list[Observation]:
        out: list[Observation] = []
        chunk = self._tail + data
        lines = chunk.split(b"\n")
        self._tail = lines.pop()
        if len(self._tail) > MAX_TRACE_LINE:
            self._tail = b""
            self.skipped += 1
        for raw in lines:
            if len(raw) > MAX_TRACE_LINE:
                self.skipped += 1
                continue
            out.extend(self._line(raw.decode("utf-8", "backslashreplace"), complete=True))
        if self._tail:
            out.extend(self._line(self._tail.decode("utf-8", "backslashreplace"), complete=False))
        return out

    def pending(self) -> list[tuple[int, str]]:
        """The calls the lab shows that are in progress and not yet reported pending: (pid, name)."""
        return [(pid, c.name) for pid, c in self._open.items() if not c.shown and is_observed(c.name, c.args)]

    def _line(self, line: str, complete: bool) -> list[Observation]:
        head = _HEAD.match(line)
        if head is None:
            if complete:
                self.skipped += 1
            return []
        pid, ts = int(head.group("pid")), _ns(head.group("ts"))
        rest = head.group("rest")
        if not complete:
            return self._partial(pid, ts, rest)
        if rest.endswith(_UNFINISHED):
            return self._partial(pid, ts, rest.removesuffix(_UNFINISHED))
        resumed = _RESUMED.match(rest)
        if resumed is not None:
            return self._resumed(pid, resumed.group("name"), resumed.group("args"))
        call = _CALL.match(rest)
        if call is not None:
            return self._done(pid, ts, call.group("name"), call.group("args"))
        return self._other(pid, ts, rest)

    def _partial(self, pid: int, ts: int, rest: str) -> list[Observation]:
        """A call's entry without its result: noted; `overdue` reports it as pending if it stays so."""
        call = _CALL.match(rest)
        if call is None:
            return []
        known = self._open.get(pid)
        if known is None or known.start_ns != ts:
            known = self._open[pid] = _Open(call.group("name"), call.group("args"), ts)
        known.args = call.group("args")
        return []

    def overdue(self) -> list[Observation]:
        """The calls still in progress that were already in progress when last asked: pending, each reported once.

        Asked a short while after each feed, as the lab marks its own calls pending after a moment:
        most calls return within microseconds, and would only flicker."""
        out = []
        for pid, known in self._open.items():
            if known.shown or not is_observed(known.name, known.args):
                continue
            if not known.seen:
                known.seen = True
                continue
            known.shown = True
            text = call_text(known.name, known.args.rstrip(", ") + ")", None)
            out.append(
                Observation(
                    pid, known.start_ns, f"{text} ...", pending=True, key=(pid, known.start_ns), name=known.name
                )
            )
        return out

    def _resumed(self, pid: int, name: str, tail: str) -> list[Observation]:
        opened = self._open.pop(pid, None)
        if opened is None or opened.name != name:
            self.skipped += 1
            return []
        args = opened.args.rstrip()
        whole = (
            f"{args} {tail}" if args and not args.endswith(("(", "[", "{")) and tail[:1] not in ")]}," else args + tail
        )
        return self._done(pid, opened.start_ns, name, whole, opened.shown)

    def _done(self, pid: int, ts: int, name: str, args: str, shown: bool = False) -> list[Observation]:
        opened = self._open.pop(pid, None)
        if opened is not None and opened.start_ns == ts:
            shown = shown or opened.shown
        duration = None
        found = _DURATION.search(args)
        if found is not None:
            duration = int(found.group("s")) * 1_000_000_000 + int(found.group("frac").ljust(9, "0"))
            args = args[: found.start()]
        if not is_observed(name, args):
            return []
        text, written, outcome = call_parts(name, args)
        inodes = tuple(dict.fromkeys((int(fd), int(ino)) for fd, ino in _SOCKET_INODE.findall(_STRING.sub("", args))))
        key = (pid, ts) if shown else None
        return [
            Observation(
                pid, ts, text, duration_ns=duration, key=key, name=name, inodes=inodes, args=written, outcome=outcome
            )
        ]

    def _other(self, pid: int, ts: int, rest: str) -> list[Observation]:
        signal = _SIGNAL.match(rest)
        if signal is not None:
            sig = signal.group("sig")
            return [Observation(pid, ts, f"! {sig}", kind="signal", signal=sig)]
        end = _END.match(rest)
        if end is not None:
            self._open.pop(pid, None)
            what = f"exited {end.group('status')}" if end.group("status") is not None else f"killed {end.group('sig')}"
            return [Observation(pid, ts, what, kind="end", signal=end.group("sig"))]
        self.skipped += 1
        return []


def _ns(stamp: str) -> int:
    seconds, _, fraction = stamp.partition(".")
    return int(seconds) * 1_000_000_000 + int(fraction)
