"""Records a lab session as a script (script.md), one line at a time, as it happens.

    recorder = Recorder(lab)              # default path: sessions_dir()/<date-time>.sockplay
    ...                                   # drive the lab: every step becomes a script line
    recorder.note("took over at line 12") # a comment line, in order with the rest
    recorder.close()                      # writes calls still blocked as `...`

`recorder.path` is the file; `recorder.error` says why recording stopped (a
write failed: the lab goes on, and a Notice says so). `recording_list.list_sessions()`
gives the recordings for a "sessions" view, newest first.

The file is a script that `sockplay replay --check` runs again. Each line is
appended with one write(2) as soon as it is complete, so a controller killed
with SIGKILL loses nothing that had completed, and what it leaves replays up to
that point. Lines come in the order the calls were started: a later call's line
waits until every earlier-started call has returned or is known to block.

Before `sockplay 1` the header records, as `#@ key: value` comment lines, what
outcomes depend on: sockplay's version, the kernel release, when and where the
session ran, and the sysctls that change socket behaviour (see `read_header`).

In the body, `+DELAY` before a step keeps the time since the previous line
(ms resolution; gaps under 1 ms are left out), so a replay can honour gaps.
A gap before `spawn`, `kill` or `sleep` is written as its `+DELAY` too
(older recordings have a `#@ wait SECONDS` comment line just before it,
which replay still honours).
Deaths, signals caught between calls and reaps are written as comments.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from playground import __version__
from playground.constants import MAX_SLEEP_SECONDS
from playground.events import (
    CallDone,
    CallObserved,
    CallPending,
    CallResult,
    CallStarted,
    DirectiveDone,
    Event,
    Notice,
    ProcessEnded,
    ProcessReaped,
    ProcessStarted,
    RemoteHostConnected,
    SignalCaught,
)
from playground.output_files import open_output_stream, write_output
from playground.script.format import format_node, format_outcome
from playground.script.model import Completion, Sleep, Spawn, Step

__all__ = [
    "Recorder",
    "SOCKET_SYSCTLS",
    "default_session_path",
    "header_lines",
    "lab_environment",
    "read_header",
    "sessions_dir",
    "socket_sysctls",
    "wait_before",
]

# The sysctls whose values change what socket calls do (read from /proc/sys).
SOCKET_SYSCTLS = (
    "net.core.somaxconn",
    "net.core.rmem_default",
    "net.core.rmem_max",
    "net.core.wmem_default",
    "net.core.wmem_max",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_retries1",
    "net.ipv4.tcp_retries2",
    "net.ipv4.tcp_orphan_retries",
    "net.ipv4.tcp_syn_retries",
    "net.ipv4.tcp_synack_retries",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_abort_on_overflow",
    "net.ipv4.tcp_max_tw_buckets",
    "net.ipv4.tcp_rfc1337",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_mem",
    "net.ipv4.tcp_moderate_rcvbuf",
    "net.ipv4.tcp_autocorking",
    "net.ipv4.tcp_notsent_lowat",
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_timestamps",
    "net.ipv4.tcp_sack",
    "net.ipv4.tcp_window_scaling",
    "net.ipv4.tcp_ecn",
    "net.ipv4.tcp_fastopen",
    "net.ipv4.tcp_congestion_control",
    "net.ipv4.udp_rmem_min",
    "net.ipv4.udp_wmem_min",
    "net.ipv6.bindv6only",
)

HEADER_MARK = "@"  # `#@ key: value`: a comment that sockplay reads back
WAIT_KEY = "wait"  # `#@ wait 2.5`: the gap before the directive on the next line
MIN_DELAY = 0.001  # gaps shorter than this are not written
SPAWN_MIN_WAIT = 0.25  # a spawn's own start-up (~50 ms) is inside its gap: only longer ones count
SLEEP_MIN_WAIT = 0.05  # a sleep's oversleeping is inside its gap
# A call that is pending but returns within this time, with no later line started
# meanwhile, is written as one plain step (a replay would not see it block).
HOLD_PENDING = 0.25
COMMENT_COLUMN = 44

_WAIT_LINE = re.compile(r"#@\s*wait\s+([0-9]+(?:\.[0-9]+)?)\s*$")


# Where sessions go.


def sessions_dir() -> Path:
    """`$XDG_STATE_HOME/sockplay/sessions`, or `~/.local/state/sockplay/sessions`."""
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if state and os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "sockplay" / "sessions"


def default_session_path(now: datetime | None = None, directory: Path | None = None) -> Path:
    """A fresh `<YYYY-mm-ddTHH-MM-SS>.sockplay` in the sessions directory (made on demand)."""
    directory = directory or sessions_dir()
    directory.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now()).strftime("%Y-%m-%dT%H-%M-%S")
    path = directory / f"{stamp}.sockplay"
    n = 2
    while path.exists():
        path = directory / f"{stamp}-{n}.sockplay"
        n += 1
    return path


# The header.


def socket_sysctls(names: Iterable[str] = SOCKET_SYSCTLS) -> dict[str, str]:
    """The current value of each sysctl that exists here, whitespace normalised."""
    out = {}
    for name in names:
        try:
            raw = Path("/proc/sys", *name.split(".")).read_text()
        except OSError:
            continue
        out[name] = " ".join(raw.split())
    return out


def lab_environment(lab: object | None) -> tuple[str, dict[str, str]]:
    """What the lab runs in (its network's kind) and the socket sysctls as its processes see them.

    In a private network namespace the per-namespace sysctls differ from the
    host's: those the lab read inside its namespace are used then.
    """
    network = getattr(lab, "network", None)
    kind = getattr(network, "kind", None) or "host loopback"
    inside = getattr(network, "sysctls", None) or {}
    if getattr(network, "private", False) and inside:
        return kind, {name: " ".join(str(value).split()) for name, value in sorted(inside.items())}
    return kind, {**socket_sysctls(), **inside}


def header_lines(
    started: datetime | None = None,
    lab_kind: str = "host loopback",
    extra: dict[str, str] | None = None,
    sysctls: dict[str, str] | None = None,
) -> list[str]:
    """The comment lines that open a recording (without `sockplay 1`)."""
    started = started or datetime.now(UTC)
    lines = [
        "# sockplay session: every step with its outcome, as it happened.",
        "# Check it again with: sockplay replay --check FILE",
        f"#@ sockplay-version: {__version__}",
        f"#@ kernel: {os.uname().release}",
        f"#@ started: {started.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}",
        f"#@ lab: {_one_line(lab_kind)}",
    ]
    for key, value in (extra or {}).items():
        lines.append(f"#@ {key}: {_one_line(value)}")
    for name, value in (socket_sysctls() if sysctls is None else sysctls).items():
        lines.append(f"#@ sysctl {name}: {value}".rstrip())
    return lines


def read_header(comments: Iterable[str]) -> dict:
    """The `#@ key: value` lines of a header (comment texts, as the parser keeps them).

    Returns a dict of the keys (`sockplay-version`, `kernel`, `started`, `lab`, ...)
    with `sysctls` holding the `sysctl NAME` entries.
    """
    out: dict = {"sysctls": {}}
    for comment in comments:
        if not comment.startswith(HEADER_MARK):
            continue
        key, sep, value = comment[1:].partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key.startswith("sysctl "):
            out["sysctls"][key[len("sysctl ") :].strip()] = value
        elif key:
            out[key] = value
    return out


def wait_before(leading: Iterable[str]) -> float:
    """The recorded gap (`#@ wait S`) among a line's leading comment lines, 0 if none."""
    total = 0.0
    for text in leading:
        match = _WAIT_LINE.match(text.strip())
        if match:
            total += float(match.group(1))
    return total


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# The recorder.


@dataclass
class _Entry:
    """One line to write, in order. A call's line is known only once it resolves."""

    kind: str  # "call", "completion", "directive", "comment"
    text: str = ""
    comment: str | None = None
    start_ns: int = 0  # when it began (a call: when it was sent)
    end_ns: int = 0  # when the next line could begin
    runs: bool = True  # a line that does something (a comment does not)
    min_wait: float = MIN_DELAY  # for directives: the shortest gap worth a `#@ wait`
    # For calls:
    call_id: int = 0
    actor: str = ""
    node: Step | None = None
    state: str = "started"  # started -> pending -> done, or started -> done
    blocked: bool = False  # written as `...`, its outcome on a line of its own
    written: bool = False
    result: CallResult | None = None
    done_ns: int = 0
    timer: asyncio.TimerHandle | None = None

    def kernel_start(self) -> int:
        """When it began, as the kernel saw it (a call's syscall start, CLOCK_MONOTONIC)."""
        if self.kind == "call" and self.result is not None and self.result.outcome.death is None:
            return self.result.start_ns or self.start_ns
        return self.start_ns

    def kernel_end(self) -> int:
        """When a call returned (or its process died), CLOCK_MONOTONIC."""
        assert self.result is not None
        if self.result.outcome.death is not None or not self.result.start_ns:
            return self.done_ns
        return self.result.start_ns + self.result.duration_ns


class RecordedLab(Protocol):
    """What a recorder needs of the lab it records: its events, and a way to say a write failed."""

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]: ...

    def notice(self, message: str, level: str = "info") -> None: ...


class Recorder:
    """Writes what a lab does as a script, line by line, to `path`.

    `path` None picks `default_session_path()`; an existing file at an explicit
    path is replaced. `lab_kind` overrides what the header says the lab ran in
    (by default the kind of the lab's network);
    `header_extra` adds `#@ key: value` lines to it.

    How a call is written: as one line with its outcome, if it returned before
    any later line began; otherwise as `ACTOR: CALL ...` and, once it returns,
    `ACTOR: ... = OUTCOME` (in the order the actor's calls blocked, as the
    script language reads them). A call that is pending with nothing after it
    is held for `hold_pending` seconds before it is written as blocked.
    """

    def __init__(
        self,
        lab: RecordedLab,
        path: Path | str | None = None,
        lab_kind: str | None = None,
        header_extra: dict[str, str] | None = None,
        hold_pending: float = HOLD_PENDING,
    ) -> None:
        self.lab = lab
        self.hold_pending = hold_pending
        self.lines_written = 0
        self.steps_written = 0
        self.error: str | None = None
        self._queue: deque[_Entry] = deque()
        self._calls: dict[int, _Entry] = {}
        self._blocked: dict[str, deque[_Entry]] = {}  # written as `...`, outcome line still to come
        self._closed = False
        self._fd: int | None = None
        self._remote_kernels: dict[str, str] = {}  # host -> what it runs, for the header at close
        # Set before the header is written: a failed write (a full disk) calls _fail, which reads it.
        self._unsubscribe: Callable[[], None] | None = None
        if path is None:
            self.path = default_session_path()
            flags = os.O_EXCL
        else:
            self.path = Path(path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = 0
        if flags:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | flags, 0o644)
        else:  # a path the user named: a regular file only, never through a link (output_files)
            self._fd = open_output_stream(self.path)
        self._last_end_ns = time.monotonic_ns()
        kind, sysctls = lab_environment(lab)
        header = header_lines(None, lab_kind or kind, header_extra, sysctls)
        self._write("\n".join([*header, "sockplay 1"]) + "\n")
        if not self._closed:
            self._unsubscribe = lab.subscribe(self.on_event)

    # Public.

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def note(self, text: str) -> None:
        """Add a comment line (in order with the lines still to be written)."""
        if self._closed:
            return
        self._queue.append(_Entry("comment", text=_comment(text), runs=False))
        self._flush()

    def close(self) -> None:
        """Write what is still held (calls that have not returned are written with `...`) and stop."""
        if self._closed:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
        for entry in self._queue:
            if entry.timer is not None:
                entry.timer.cancel()
            if entry.kind == "call" and entry.state != "done":
                entry.blocked = True
        self._flush()
        for waiting in self._blocked.values():
            for entry in waiting:
                if entry.result is not None and entry.node is not None:
                    self._write(
                        _comment(
                            f"{entry.actor}'s {entry.node.call.name} returned {format_outcome(entry.result.outcome)}, "
                            f"but an older blocked call of {entry.actor} never did, so no line can state it"
                        )
                        + "\n"
                    )
        self._closed = True
        if self._fd is not None:
            if self._remote_kernels:
                self._name_remote_kernels()
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _name_remote_kernels(self) -> None:
        """Add `#@ kernel HOST: ...` to the header: a remote host is known only once it connects, after
        the header was written, so the file is rewritten whole (a new file renamed over it) at close.
        If that fails the comment written when the host connected still names its kernel."""
        lines = [f"#@ kernel {host}: {_one_line(what)}" for host, what in self._remote_kernels.items()]
        with contextlib.suppress(OSError):
            with open(f"/proc/self/fd/{self._fd}", "rb") as written:  # the file itself, whatever its name is now
                data = written.read()
            head, sep, rest = data.partition(b"\nsockplay 1\n")
            if sep:
                write_output(self.path, head + ("\n" + "\n".join(lines)).encode() + sep + rest, 0o644)

    # Events.

    def on_event(self, event: Event) -> None:
        if self._closed:
            return
        try:
            self._on_event(event)
        except Exception as exc:  # a recorder must never break the lab it watches
            self._fail(f"recording stopped: {exc!r}")

    def _on_event(self, event: Event) -> None:
        if isinstance(event, CallStarted):
            self._started(event)
        elif isinstance(event, CallPending):
            self._pending(event)
        elif isinstance(event, CallDone):
            self._done(event)
        elif isinstance(event, ProcessStarted):
            self._spawned(event)
        elif isinstance(event, DirectiveDone):
            self._directive(event)
        elif isinstance(event, SignalCaught):
            self._note(f"{event.process} caught {', '.join(event.signals)} between calls")
        elif isinstance(event, ProcessEnded):
            self._ended(event)
        elif isinstance(event, ProcessReaped) and event.by:
            self._note(f"{event.by} reaped {event.process}")
        elif isinstance(event, CallObserved) and not event.pending:
            self._queue.append(_Entry("comment", text=_one_line(event.line), runs=False))  # kept as an observed line
        elif isinstance(event, RemoteHostConnected):
            self._remote_kernels[event.host] = f"{event.kernel}, python {event.python}, ssh {event.destination}"
            self._note(f"remote host {event.host} ({event.destination}): {event.kernel}, python {event.python}")
        elif isinstance(event, Notice) and event.level != "info":
            self._note(f"{event.level}: {event.message}")
        self._flush()

    def _started(self, event: CallStarted) -> None:
        if not isinstance(event.node, Step):
            return
        entry = _Entry("call", start_ns=event.t_ns, call_id=event.call_id, actor=event.process, node=event.node)
        self._calls[event.call_id] = entry
        self._append(entry)

    def _pending(self, event: CallPending) -> None:
        entry = self._calls.get(event.call_id)
        if entry is None or entry.state != "started":
            return
        entry.state = "pending"
        entry.end_ns = event.t_ns
        if self._runs_after(entry):
            entry.blocked = True
        else:
            self._hold(entry)

    def _spawned(self, event: ProcessStarted) -> None:
        if event.parent is not None:  # a forked child: its fork() line is its record
            return
        text, t_ns = format_node(event.node or Spawn(event.process, host=event.host)), event.t_ns
        entry = _Entry("directive", text=text, comment=f"pid {event.pid}", start_ns=t_ns, end_ns=t_ns)
        entry.min_wait = SPAWN_MIN_WAIT
        self._append(entry)

    def _directive(self, event: DirectiveDone) -> None:
        start, min_wait = event.t_ns, MIN_DELAY
        if isinstance(event.node, Sleep):  # reported when it ends; it may have overslept a little
            start -= int(event.node.seconds * 1e9)
            min_wait = SLEEP_MIN_WAIT
        self._append(
            _Entry("directive", text=format_node(event.node), start_ns=start, end_ns=event.t_ns, min_wait=min_wait)
        )

    def _note(self, text: str) -> None:
        self._queue.append(_Entry("comment", text=_comment(text), runs=False))

    def _done(self, event: CallDone) -> None:
        entry = self._calls.pop(event.call_id, None)
        if entry is None:
            return
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        entry.state = "done"
        death = event.result.outcome.death
        if death is not None and death.detail == "?":  # its process ended unseen (a remote link dropped)
            entry.blocked = True  # so it stays `...`: no outcome line can say what happened
            return
        entry.result = event.result
        entry.done_ns = event.t_ns
        if not entry.blocked:
            entry.end_ns = event.t_ns
        if entry.written:
            self._release(entry.actor)

    def _ended(self, event: ProcessEnded) -> None:
        # A call sent just as its process died may never be answered: it was not made.
        for call_id, entry in list(self._calls.items()):
            if entry.actor == event.process and entry.state == "started" and not entry.written:
                self._calls.pop(call_id)
                self._queue.remove(entry)
                node = entry.node
                what = format_node(replace(node, delay=None, expect=None, blocks=False)) if node else "a call"
                self._note(f"not made: {what} ({event.process} had ended)")
        known = event.death is not None and event.death.detail != "?"
        state = str(event.death) if known else "ended (how, nobody could see)"
        tail = " (a zombie until its parent reaps it)" if event.zombie else ""
        self._note(f"{event.process} {state}{tail}")

    # Ordering.

    def _append(self, entry: _Entry) -> None:
        """Queue a line that does something: a call still pending before it blocked while it ran."""
        for earlier in self._queue:
            if earlier.kind == "call" and earlier.state == "pending" and not earlier.blocked:
                earlier.blocked = True
                if earlier.timer is not None:
                    earlier.timer.cancel()
                    earlier.timer = None
        self._queue.append(entry)

    def _runs_after(self, entry: _Entry) -> bool:
        """Whether a line that does something was queued after this entry."""
        seen = False
        for other in self._queue:
            if seen and other.runs:
                return True
            seen = seen or other is entry
        return False

    def _overlaps(self, entry: _Entry) -> bool:
        """Whether a later call or directive began, in the kernel's time, before this call returned.

        (A later outcome line makes nothing happen: it does not count.)
        """
        end = entry.kernel_end()
        seen = False
        for other in self._queue:
            if seen and other.kind in ("call", "directive") and other.kernel_start() < end:
                return True
            seen = seen or other is entry
        return False

    def _hold(self, entry: _Entry) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            entry.blocked = True
            return
        entry.timer = loop.call_later(self.hold_pending, self._hold_expired, entry)

    def _hold_expired(self, entry: _Entry) -> None:
        entry.timer = None
        if self._closed or entry.state != "pending" or entry.blocked:
            return
        try:
            entry.blocked = True
            self._flush()
        except Exception as exc:
            self._fail(f"recording stopped: {exc!r}")

    def _release(self, actor: str) -> None:
        """Queue the outcome lines of the actor's blocked calls, oldest first, as far as they are known."""
        waiting = self._blocked.get(actor)
        while waiting and waiting[0].result is not None:
            blocked = waiting.popleft()
            self._append(
                _Entry(
                    "completion",
                    actor=actor,
                    result=blocked.result,
                    start_ns=blocked.done_ns,
                    end_ns=blocked.done_ns,
                    node=blocked.node,
                )
            )

    def _flush(self) -> None:
        while self._queue:
            entry = self._queue[0]
            if entry.kind == "call" and not entry.blocked:
                if entry.state != "done":
                    return  # not yet returned, or pending and held
                entry.blocked = self._overlaps(entry)
            self._queue.popleft()
            self._write_entry(entry)
            if entry.kind == "call" and entry.blocked:
                self._blocked.setdefault(entry.actor, deque()).append(entry)
                self._release(entry.actor)

    # Writing.

    def _gap(self, entry: _Entry) -> float | None:
        if not entry.runs:
            return None
        gap = (entry.start_ns - self._last_end_ns) / 1e9
        self._last_end_ns = max(self._last_end_ns, entry.end_ns or entry.start_ns)
        return gap

    def _write_entry(self, entry: _Entry) -> None:
        entry.written = True
        gap = self._gap(entry)
        delay, note = _delay(gap)
        if entry.kind == "call":
            assert entry.node is not None
            node = replace(entry.node, delay=delay, expect=None, blocks=False)
            if entry.blocked or entry.result is None:
                text, comment = format_node(node, pending=True), None
            else:
                text, comment = format_node(node, entry.result.outcome), _duration(entry.result)
            self.steps_written += 1
        elif entry.kind == "completion":
            assert entry.result is not None
            text = format_node(Completion(entry.actor, None, delay), entry.result.outcome)
            comment = _duration(entry.result)
        elif entry.kind == "directive":
            text, comment = entry.text, entry.comment
            if gap is not None and gap >= entry.min_wait:
                text = f"+{_seconds(min(gap, MAX_SLEEP_SECONDS))} {text}"
        else:
            text, comment = entry.text, None
        if note:
            comment = f"{comment} · {note}" if comment else note
        self._write(_with_comment(text, comment) + "\n")

    def _write(self, text: str) -> None:
        if self._fd is None:
            return
        data = text.encode("utf-8", "backslashreplace")
        try:
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
        except OSError as exc:
            self._fail(f"cannot write {self.path}: {exc.strerror}")
            return
        self.lines_written += text.count("\n")

    def _fail(self, message: str) -> None:
        if self.error is not None:
            return
        self.error = message
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        with contextlib.suppress(Exception):
            self.lab.notice(message, "error")


def _delay(gap: float | None) -> tuple[float | None, str | None]:
    if gap is None or gap < MIN_DELAY:
        return None, None
    if gap > MAX_SLEEP_SECONDS:
        return MAX_SLEEP_SECONDS, f"the gap was {gap:.0f} s"
    return round(gap, 3), None


def _seconds(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def _comment(text: str) -> str:
    return "# " + _one_line(text)


def _with_comment(text: str, comment: str | None) -> str:
    if not comment:
        return text
    head, _, last = text.rpartition("\n")
    padded = f"{last:<{COMMENT_COLUMN}} # {comment}"
    return f"{head}\n{padded}" if head else padded


def _duration(result: CallResult) -> str | None:
    if result.outcome.death is not None or not result.duration_ns:
        return None
    ns = result.duration_ns
    return f"{ns / 1e6:.1f} ms" if ns >= 1_000_000 else f"{ns / 1e3:.0f} µs"
