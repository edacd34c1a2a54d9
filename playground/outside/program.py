"""Outside programs in a lab (`spawn NAME exec [--trace] COMMAND ARG...`): started, read, signalled, ended.

Each runs under a supervisor (playground.outside.supervisor) in the lab's network. Its output
lines reach the event log as notices (escaped: nothing it writes reaches the terminal raw);
with --trace, strace's lines become CallObserved events, their times moved from strace's
CLOCK_REALTIME onto the lab's CLOCK_MONOTONIC by an offset measured when the program starts.
Running a program is refused unless the lab allows it (`lab.lifecycle.outside.allowed`): a script may come from
anywhere, and a program runs with the user's rights, outside any sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from playground.errors import LabError
from playground.events import CallObserved, Notice, ProcessEnded, ProcessStarted
from playground.lab_lifecycle import PACKAGE_ROOT, SPAWN_TIMEOUT, death_from_status, no_room
from playground.lab_process import Process
from playground.outside.sockets import ObservedSockets
from playground.outside.strace_lines import Observation, StraceReader
from playground.outside.strace_text import TRACED
from playground.outside.supervisor import ATTACH
from playground.script.exec_line import printable
from playground.script.model import Death, Observed, Spawn

if TYPE_CHECKING:
    from playground.lab import Lab

MAX_OUTPUT_LINE = 4096  # characters of one output line shown; the rest is cut
MAX_OUTPUT_LINES = 10_000  # lines shown per program; past that its output is read and dropped
PENDING_AFTER = 0.01  # as the lab's own calls: one still running after this is shown pending
STRING_CHARS = 128
HOLD_FOR_SIGNAL = 0.005  # how long a call just read waits for a signal strace writes after it
TRACE_END_WAIT = 1.0  # how long a traced program's end waits for the trace to catch up
TRACE_PIPE_BYTES = 1 << 20  # the most an ordinary user may ask for (fs.pipe-max-size)
_F_SETPIPE_SZ = 1031  # strace -s: the data shown of each read and write

EXEC_REFUSED = (
    "running outside programs is not allowed here: a script may come from anywhere and its program would "
    "run with your rights (pass --allow-exec to allow it)"
)


def tracer_words(strace: str) -> list[str]:
    """strace's options: follow forks and threads (-f) with the program its child (-D), descriptors named
    (-y: which are sockets; -yy costs the program twice as much), nanosecond times and durations, and
    only the calls the lab shows (--seccomp-bpf: the program is not stopped for any other)."""
    return [
        strace,
        "-D",
        "-f",
        "-q",
        "--seccomp-bpf",
        "-y",
        "-s",
        str(STRING_CHARS),
        "--absolute-timestamps=format:unix,precision:ns",
        "--syscall-times=ns",
        "-e",
        "trace=" + ",".join("?" + name for name in sorted(TRACED)),
        "-o",
        "{trace}",
    ]


def clock_offset() -> tuple[int, int]:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC in ns, and the uncertainty of that figure (the tightest of a few reads)."""
    best = (0, 1 << 62)
    for _ in range(5):
        before = time.monotonic_ns()
        real = time.time_ns()
        after = time.monotonic_ns()
        if after - before < best[1]:
            best = (real - (before + after) // 2, after - before)
    return best


class OutsidePrograms:
    """The lab's outside programs, by name."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.programs: dict[str, OutsideProgram] = {}
        self.allowed = False  # whether programs may run (a script's user said so: --allow-exec)

    async def spawn(self, node: Spawn, netns: str | None = None) -> Process:
        """Start the program of a `spawn NAME exec ...` line in the lab's network (or in netns, `PID[,user]`)."""
        lab = self.lab
        if not self.allowed:
            raise LabError(EXEC_REFUSED)
        if node.name in lab.processes:
            raise LabError(f"a process named {node.name!r} already exists")
        lab.lifecycle.check_room_for_process()
        if netns is None:
            args = lab.network.worker_args()
            netns = args[0].removeprefix("--netns=") if args else None
        program = OutsideProgram(lab, node)
        self.programs[node.name] = program
        try:
            await program.start(netns)
        except BaseException:
            program.close()
            self.programs.pop(node.name, None)
            raise
        return program.process

    async def attach(self, name: str, pid: int) -> Process:
        """Trace a running process (`sockplay trace -p PID`): strace attaches where ptrace is allowed; the
        process is watched, not owned: when the lab ends, strace detaches and the process runs on."""
        # "-": it runs where it is, with no namespace to enter
        return await self.spawn(Spawn(name, None, command=(ATTACH, str(pid)), trace=True), "-")

    def pids(self) -> list[int]:
        return [p.supervisor.pid for p in self.programs.values() if p.supervisor is not None]

    async def shutdown(self) -> None:
        """End every program and everything it started; wait (bounded) until their supervisors are gone."""
        programs = list(self.programs.values())
        for program in programs:
            program.close()
        loop = asyncio.get_running_loop()
        for program in programs:
            await loop.run_in_executor(None, program.wait_supervisor, 12.0)

    def kill_all_now(self) -> None:
        """Synchronous last resort: each supervisor's channel closes, and it kills its program's whole tree."""
        for program in self.programs.values():
            program.close()


class OutsideProgram:
    """One outside program: its supervisor, channel, output pipes and (traced) strace's output."""

    def __init__(self, lab: Lab, node: Spawn) -> None:
        self.lab = lab
        self.node = node
        self.name = node.name
        self.supervisor: subprocess.Popen | None = None
        self.channel: socket.socket | None = None
        self.process = Process(name=node.name, pid=0, outside=True)
        self.offset_ns, self.offset_error_ns = clock_offset()
        self.reader = StraceReader() if node.trace else None
        self.sockets = ObservedSockets(self.process, lab.labels)
        self._fds: list[int] = []  # our ends of its pipes: stdout, stderr, trace
        self._streams: dict[int, str] = {}  # each of them: "stdout", "stderr" or "trace"
        self._partial: dict[int, bytes] = {}
        self._lines_shown = 0
        self._control = b""
        self._started: asyncio.Future[int] | None = None
        self._overdue_timer: asyncio.TimerHandle | None = None
        self._early_end: int | None = None  # its wait status, if it came before the program was taken up
        self._end_status: int | None = None  # its wait status, from its supervisor
        self._trace_ended = False  # the trace has said how it ended (`+++ exited with 0 +++`)
        self._trace_death: Death | None = None  # as the trace said it (all there is of a process attached to)
        self._end_timer: asyncio.TimerHandle | None = None
        self._held: list[Observation] = []  # the last call read, until its signal (if any) has come too
        self._held_timer: asyncio.TimerHandle | None = None

    @property
    def attached(self) -> bool:
        """A running process strace attaches to (`sockplay trace -p PID`), not one the lab started."""
        return self.node.command[:1] == (ATTACH,)

    def _executables(self) -> tuple[str, list[str]]:
        strace = shutil.which("strace") if self.node.trace else None
        if self.node.trace and strace is None:
            raise LabError("exec --trace needs strace, which is not installed (Debian, Ubuntu: apt-get install strace)")
        if self.attached:  # -D (strace a grandchild of the program) is for a program it starts
            assert strace is not None
            return ATTACH, [word for word in tracer_words(strace) if word != "-D"]
        word = self.node.command[0]
        path = shutil.which(word) if "/" not in word else (word if os.access(word, os.X_OK) else None)
        if path is None:
            raise LabError(f"{word}: no such program (looked for it on PATH)")
        return os.path.abspath(path), tracer_words(strace) if strace is not None else []

    async def start(self, netns: str | None) -> None:
        path, tracer = self._executables()
        loop = asyncio.get_running_loop()
        try:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            pipes = [os.pipe() for _ in range(3 if self.node.trace else 2)]
        except OSError as exc:
            raise LabError(no_room(exc, f"the pipes of {self.name}")) from None
        writers = [w for _, w in pipes]
        self._fds = [r for r, _ in pipes]
        if self.node.trace:  # room for a burst of strace's lines: a full pipe stops strace, and the program with it
            with contextlib.suppress(OSError):
                fcntl.fcntl(self._fds[2], _F_SETPIPE_SZ, TRACE_PIPE_BYTES)
        self._streams = dict(zip(self._fds, ("stdout", "stderr", "trace"), strict=False))
        trace_w = writers[2] if self.node.trace else -1
        boot = (
            f"import sys; sys.path.insert(0, {PACKAGE_ROOT!r}); from playground.outside.supervisor import main; main()"
        )
        argv = [sys.executable, "-S", "-c", boot, str(theirs.fileno()), str(writers[0]), str(writers[1]), str(trace_w)]
        argv += [netns or "-", str(len(tracer)), *tracer, path, *self.node.command]
        try:
            self.supervisor = subprocess.Popen(
                argv,
                pass_fds=[theirs.fileno(), *writers],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=None if os.environ.get("SOCKPLAY_DEBUG") else subprocess.DEVNULL,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise LabError(no_room(exc, self.name)) from None
        finally:
            theirs.close()
            for fd in writers:
                os.close(fd)
        self.channel = ours
        ours.setblocking(False)
        self._started = loop.create_future()
        loop.add_reader(ours.fileno(), self._on_control)
        try:
            pid = await asyncio.wait_for(asyncio.shield(self._started), SPAWN_TIMEOUT)
        except TimeoutError:
            raise LabError(f"{self.name} did not start within {SPAWN_TIMEOUT:g} s") from None
        for fd in self._fds:
            os.set_blocking(fd, False)
        self._adopt(pid)
        for fd in self._fds:
            loop.add_reader(fd, self._on_output, fd)

    def _adopt(self, pid: int) -> None:
        """The program runs: track it as a lab process (signalled through a pidfd, as the lab's own are)."""
        proc = self.process
        node: Spawn | Observed = self.node
        if self.attached:  # the supervisor named strace; the process is the one it attached to
            pid = int(self.node.command[1])
            node = Observed(self.name, f"attached to pid {pid}")  # what a recording says of it: text only
        proc.pid = pid
        # Its supervisor (our child, our code) names it; it may have ended and been reaped already,
        # then its end is in the channel, right behind its pid.
        try:
            proc.pidfd = os.pidfd_open(pid)
        except OSError:
            proc.pidfd = None
        self.lab.processes[self.name] = proc
        self.lab._emit(ProcessStarted(self.name, pid, None, time.monotonic_ns(), node))
        if self._early_end is not None:
            self._ended(self._early_end)

    # What the supervisor says.

    def _on_control(self) -> None:
        assert self.channel is not None
        try:
            data = self.channel.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._channel_closed()
            return
        self._control += data
        while b"\n" in self._control:
            line, _, self._control = self._control.partition(b"\n")
            self._message(line.decode("utf-8", "replace"))

    def _message(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        started = self._started
        if word == "pid" and rest.isdigit() and started is not None and not started.done():
            started.set_result(int(rest))
        elif word == "fail" and started is not None and not started.done():
            started.set_exception(LabError(f"{self.name}: {printable(rest)}"))
        elif word == "ended" and rest.lstrip("-").isdigit():
            self._ended(int(rest))

    def _ended(self, status: int) -> None:
        proc = self.process
        if proc.pid == 0:  # its pid is known, but not yet taken up (see _adopt)
            self._early_end = status
            return
        if proc.death is not None or self._end_status is not None:
            return
        self._end_status = status
        self._drain()
        if self.reader is not None and not self._trace_ended:
            # strace writes the program's last calls after the supervisor learns of its end: its
            # end waits (a moment, at most) for the trace's own `+++ ... +++` line, and comes after them.
            self._end_timer = asyncio.get_running_loop().call_later(TRACE_END_WAIT, self._report_end)
            return
        self._report_end()

    def _report_end(self) -> None:
        proc = self.process
        if proc.death is not None or self._end_status is None:
            return
        if self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None
        self._flush_held()
        # An attached process is not its supervisor's child: strace's own end says only that strace ended.
        attached_end = self._trace_death or Death("exited", "?")
        proc.death = attached_end if self.attached else death_from_status(self._end_status)
        proc.reaped = True
        self.lab._emit(ProcessEnded(self.name, proc.pid, proc.death, False, time.monotonic_ns()))

    def _channel_closed(self) -> None:
        """The supervisor is gone (or going): nothing more comes from it."""
        loop = asyncio.get_running_loop()
        if self.channel is not None:
            loop.remove_reader(self.channel.fileno())
        if self._started is not None and not self._started.done():
            self._started.set_exception(LabError(f"{self.name} could not be started"))

    # What the program (and strace) write.

    def _on_output(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(fd)
            self._lines(fd, b"\n", final=True)
            return
        if self._streams.get(fd) == "trace":
            self._observed(data)
        else:
            self._lines(fd, data)

    def _drain(self) -> None:
        """Read what the pipes hold now, so a program's last words come before its end."""
        for fd in self._fds:
            for _ in range(64):
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                if self._streams.get(fd) == "trace":
                    self._observed(data)
                else:
                    self._lines(fd, data)

    def _lines(self, fd: int, data: bytes, final: bool = False) -> None:
        data = self._partial.pop(fd, b"") + data
        lines = data.split(b"\n")
        rest = lines.pop()
        if len(rest) > MAX_OUTPUT_LINE:
            lines.append(rest)
            rest = b""
        if rest and not final:
            self._partial[fd] = rest
        stream = self._streams.get(fd, "output")
        for raw in lines:
            if not raw and final:
                continue
            self._lines_shown += 1
            if self._lines_shown > MAX_OUTPUT_LINES:
                if self._lines_shown == MAX_OUTPUT_LINES + 1:
                    self.lab.notice(f"{self.name} wrote more than {MAX_OUTPUT_LINES} lines: the rest is not shown")
                continue
            text = printable(raw[:MAX_OUTPUT_LINE].decode("utf-8", "backslashreplace"))
            self.lab._emit(Notice(f"{self.name} ({stream}): {text}", time.monotonic_ns(), "output"))

    def _observed(self, data: bytes) -> None:
        assert self.reader is not None
        observations = self._held + self.reader.feed(data)
        self._held = []
        if observations and observations[-1].kind == "call" and not observations[-1].pending:
            # strace may write the signal that came with this call in its next write: wait a moment for it
            self._held = [observations.pop()]
            if self._held_timer is None:
                self._held_timer = asyncio.get_running_loop().call_later(HOLD_FOR_SIGNAL, self._flush_held)
        self._emit_observed(observations)
        if self._trace_ended and self._end_status is not None:
            self._report_end()
        if self.reader.pending() and self._overdue_timer is None:
            self._overdue_timer = asyncio.get_running_loop().call_later(PENDING_AFTER, self._overdue)

    def _flush_held(self) -> None:
        if self._held_timer is not None:
            self._held_timer.cancel()
            self._held_timer = None
        held, self._held = self._held, []
        self._emit_observed(held)

    def _overdue(self) -> None:
        """Calls still in progress a moment after they were seen starting: shown pending, as the lab's own."""
        self._overdue_timer = None
        if self.reader is None or self.channel is None:
            return
        self._emit_observed(self.reader.overdue())
        if self.reader.pending():
            self._overdue_timer = asyncio.get_running_loop().call_later(PENDING_AFTER, self._overdue)

    def _emit_observed(self, observations: list[Observation]) -> None:
        now = time.monotonic_ns()
        for i, seen in enumerate(observations):
            if seen.kind == "signal" and i > 0 and _amended(observations[i - 1], seen):
                continue
            if seen.kind == "end" and seen.pid == self.process.pid:
                self._trace_ended = True  # the program's own end is its ProcessEnded
                how, _, detail = seen.text.partition(" ")
                self._trace_death = Death(how, int(detail) if detail.lstrip("-").isdigit() else detail)
                continue
            text = seen.text
            following = observations[i + 1] if i + 1 < len(observations) else None
            if seen.kind == "call" and following is not None and _amended(seen, following):
                text += f" ! {following.signal}"
            label = self.name if seen.pid == self.process.pid else f"{self.name}[{seen.pid}]"
            key = seen.key or (seen.pid, seen.start_ns)
            start = seen.start_ns - self.offset_ns
            facts = self.sockets.learn(seen, label)
            observed = CallObserved(key, label, text, seen.pending, start, seen.duration_ns, now, **facts.fields())
            self.lab._emit(observed)

    # The end.

    def close(self) -> None:
        """Close the channel (the supervisor then kills the program's tree and exits) and our ends of the pipes."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and self.channel is not None:
            # What strace wrote before the end is still in the pipe, and the last call may be held
            # for its signal: both are reported before the pipes close (nothing the program did is lost).
            self._drain()
            self._flush_held()
        for timer in (self._overdue_timer, self._held_timer, self._end_timer):
            if timer is not None:
                timer.cancel()
        self._overdue_timer = self._held_timer = self._end_timer = None
        if self.channel is not None:
            if loop is not None:
                loop.remove_reader(self.channel.fileno())
            self.channel.close()
            self.channel = None
        for fd in self._fds:
            if loop is not None:
                loop.remove_reader(fd)
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
        proc = self.process
        if self.lab.processes.get(self.name) is proc:  # gone from the lab: nothing else signals it by its number
            del self.lab.processes[self.name]
        if proc.pidfd is not None:
            if proc.death is None and not self.attached:  # its supervisor kills it too (an attached one: never)
                try:
                    signal.pidfd_send_signal(proc.pidfd, signal.SIGKILL)
                except OSError:
                    pass
                proc.death = Death("killed", "SIGKILL")
            os.close(proc.pidfd)
            proc.pidfd = None

    def wait_supervisor(self, timeout: float) -> None:
        if self.supervisor is None:
            return
        try:
            self.supervisor.wait(timeout)
        except subprocess.TimeoutExpired:
            self.supervisor.kill()
            self.supervisor.wait()


def _amended(call: Observation, signal: Observation) -> bool:
    """Whether a signal strace shows right after a call of the same process came during that call."""
    return call.kind == "call" and not call.pending and signal.kind == "signal" and signal.pid == call.pid
