"""The TUI's side of the engine: one Lab, its events in an EventBook, and script lines run in order.

UI-free. The app owns one LabSession; widgets never touch the Lab or a socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from playground.errors import LabError
from playground.events import (
    CallDone,
    CallPending,
    CallStarted,
    Event,
    ProcessStarted,
)
from playground.session.eventbook import EventBook
from playground.session.lines import CompletionContext, fresh_name
from playground.session.names import FdVars
from playground.session.view import LabView, SocketView, ViewCache, build_view
from playground.session.wire import WireBook, WireState
from playground.worker import libc

if TYPE_CHECKING:
    from playground.executor import Executor, StepReport
    from playground.lab import CallHandle, Lab
    from playground.lab_limits import Limits
    from playground.netlab.controller import PortCounters
    from playground.packet_log import AnyPacket
    from playground.runner import Runner
    from playground.script.model import Completion, Node, Outcome, StateCheck, Wire
    from playground.session.recording import SessionRecording

__all__ = ["LabSession", "LineRun", "DEFAULT_PROCESSES", "SETTLE_TIMEOUT"]

DEFAULT_PROCESSES = ("server", "client")
# A call that has neither returned nor been reported pending is still "settling": the next
# line waits for it, so lines run in the order typed (the engine marks a call pending after 10 ms).
SETTLE_TIMEOUT = 1.0
# A directive that fails, fails at once; one still running after this is accepted.
DIRECTIVE_GRACE = 0.05


@dataclass
class LineRun:
    """What running one line did."""

    node: Node | None
    handle: CallHandle | None = None
    task: asyncio.Task | None = None


class LabSession:
    """One lab, what the TUI knows of it, and the serial order in which lines run."""

    def __init__(
        self,
        allow_network: bool = False,
        deterministic: bool = False,
        pcap: str | None = None,
        host_network: bool = False,
    ) -> None:
        libc.one_heap()  # the capture's and the dumps' threads share the heap (worker.libc says why)
        self.allow_network = allow_network
        self.deterministic = deterministic
        self.pcap = pcap
        self.host_network = host_network
        self.limits: Limits | None = None  # the lab's caps; None: the defaults
        self.allow_exec = False  # whether `spawn NAME exec ...` may run a program (--allow-exec, `sockplay trace`)
        self.lab: Lab | None = None
        self.executor: Executor | None = None  # carries out the lines, by the rules a script's lines follow
        self.book: EventBook = WireBook(time.monotonic_ns(), deterministic)
        self.wire = WireState()
        self.snapshot: dict[str, Sequence[dict]] = {}
        self.view_cache = ViewCache()  # the view's parts, remade only where the kernel's view changed
        self.host_counters: dict[str, PortCounters] = {}  # the network lab's cables, as of the last refresh
        self.tracked_names: dict[str, FdVars] = {}
        self.tracked_version = 0  # counts the changes to tracked_names (the view remakes names only then)
        self.pending: dict[int, tuple[str, str]] = {}  # call_id -> (process, call text)
        self.on_event: Callable[[Event], None] | None = None
        self.calls_done = 0
        self._unsettled: set[int] = set()
        self._settled: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks: set[asyncio.Task] = set()

    # Life cycle.

    async def start(self) -> Lab:
        from playground.executor import Executor  # the engine loads after the first frame
        from playground.lab import Lab

        self.lab = await Lab.start(
            allow_network=self.allow_network, host_network=self.host_network, pcap=self.pcap, limits=self.limits
        )
        self.lab.lifecycle.outside.allowed = self.allow_exec
        self.executor = Executor(self.lab)
        self.wire.attach(self.lab)
        self.book.t0 = self.lab.t0
        if isinstance(self.book, WireBook):
            self.book.packets_from(self.lab.packets.get)
        self._settled = asyncio.Event()
        self._settled.set()
        self._lock = asyncio.Lock()
        self._unsubscribe = self.lab.subscribe(self._observe)
        return self.lab

    async def spawn_defaults(self, names: tuple[str, ...] = DEFAULT_PROCESSES) -> None:
        assert self.lab is not None
        for name in names:
            if name not in self.lab.processes:
                await self.lab.spawn(name)

    async def shutdown(self) -> None:
        """End every process the lab started."""
        for task in list(self._tasks):
            task.cancel()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.wire.close()
        if self.executor is not None:
            self.executor.close()
            self.executor = None
        if self.lab is not None:
            await self.lab.shutdown()

    async def restart(self) -> Lab:
        """End this lab and start a fresh one: no processes, nothing known of the old one; the book goes on."""
        await self.shutdown()
        self.lab = None
        self.snapshot = {}
        self.view_cache = ViewCache()
        self.tracked_names.clear()
        self.tracked_version += 1
        self.pending.clear()
        self._unsettled.clear()  # calls of the old lab never settle now
        return await self.start()

    @property
    def started(self) -> bool:
        return self.lab is not None

    # Events.

    def _observe(self, event: Event) -> None:
        lab = self.lab
        assert lab is not None
        names = None
        if isinstance(event, CallStarted):
            self._unsettled.add(event.call_id)
            if self._settled is not None:
                self._settled.clear()
            proc = lab.processes.get(event.process) or lab.threads.get(event.process)  # a thread shares names
            names = proc.names if proc is not None else None
        elif isinstance(event, CallPending):
            self._settle(event.call_id)
            self.pending[event.call_id] = (event.process, event.text.split(": ", 1)[-1])
        elif isinstance(event, CallDone):
            self._settle(event.call_id)
            self.pending.pop(event.call_id, None)
            self.calls_done += 1
            self.tracked_version += _track_names(self.tracked_names, self.lab, event)
        elif isinstance(event, ProcessStarted) and event.parent is not None:
            self.tracked_names[event.process] = FdVars(self.tracked_names.get(event.parent))
            self.tracked_version += 1
        self.book.add(event, names)
        if self.on_event is not None:
            self.on_event(event)

    def _settle(self, call_id: int) -> None:
        self._unsettled.discard(call_id)
        if not self._unsettled and self._settled is not None:
            self._settled.set()

    # Running lines.

    async def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Wait until every call sent has returned or is reported pending."""
        if self._settled is None or self._settled.is_set():
            return
        try:
            await asyncio.wait_for(self._settled.wait(), timeout)
        except TimeoutError:
            pass

    async def run_line(
        self,
        text: str,
        default_actor: str | None = None,
        accepted: Callable[[Node], None] | None = None,
    ) -> LineRun:
        """Parse a line against the live lab and carry it out, after the lines before it.

        Raises LineError (with a column) or LabError before `accepted` is called; a step
        is sent and not waited for (its CallDone event tells how it ended). The rules are
        the executor's, as for a script; this adds what the TUI shows.
        """
        lab, executor = self.lab, self.executor
        if lab is None or executor is None or self._lock is None:
            raise LabError("the lab is still starting")
        from playground.script.model import Completion, Sleep, StateCheck, Step, Wire
        from playground.script.parser import parse_line

        async with self._lock:
            await self.settle()
            executor.take_notes()  # the book has its own line for each of them
            node = parse_line(text, lab.scope(default_actor))
            if node is None:
                return LineRun(None)
            lab.check_sleep(max(getattr(node, "delay", None) or 0, node.seconds if isinstance(node, Sleep) else 0))
            if isinstance(node, Step):
                if node.delay and accepted is not None:
                    accepted(node)  # shown at once, sent after its delay
                handle = await executor.send(node, wait=False)
                if not node.delay and accepted is not None:
                    accepted(node)
                handle.future.add_done_callback(self._call_finished(handle))
                return LineRun(node, handle)
            if isinstance(node, Completion):
                blocked = executor.claim(node)
                if accepted is not None:
                    accepted(node)
                task = self._spawn_task(self._state_outcome(node, blocked))
                return LineRun(node, blocked, task)
            if isinstance(node, (Wire, StateCheck)):
                if accepted is not None:
                    accepted(node)
                await self._check(node)
                return LineRun(node)
            return await self._directive(node, text.strip(), accepted)

    async def _directive(self, node: Node, text: str, accepted: Callable[[Node], None] | None) -> LineRun:
        """A directive that fails at once raises; one still running after a moment is accepted."""
        from playground.script.model import Sleep

        assert self.executor is not None
        task = asyncio.ensure_future(self.executor.directive(node, text))
        done, _ = await asyncio.wait({task}, timeout=DIRECTIVE_GRACE if not isinstance(node, Sleep) else 0)
        if task in done:
            task.result()  # raises the LabError of a directive that failed at once
            if accepted is not None:
                accepted(node)
            return LineRun(node)
        if accepted is not None:
            accepted(node)
        try:
            await task
        except LabError as exc:
            self.book.note(f"{text}: {exc}", time.monotonic_ns(), "fault")
        return LineRun(node, task=task)

    def _spawn_task(self, coro: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _state_outcome(self, node: Completion, handle: CallHandle) -> None:
        """Wait (as long as it takes) for the call a `...` line completes; note whether it went as stated."""
        assert self.executor is not None
        report = _blank_report(node)
        try:
            await self.executor.await_completion(node, handle, report, None)
        except (LabError, asyncio.CancelledError):
            return
        if node.expect is None or report.result is None:
            return
        if report.divergence is not None:
            text = f"{handle.text} diverged: {report.divergence}"
            self.book.note(text, time.monotonic_ns(), "diverged", handle.process.name)
        else:
            text = _as_stated(handle.text, report.result.outcome)
            self.book.note(text, time.monotonic_ns(), "notice", handle.process.name)

    async def _check(self, node: Wire | StateCheck) -> None:
        """A typed `~` or `state` line: the executor checks it; the book says how it went."""
        from playground.script.format import format_node
        from playground.script.model import Wire

        assert self.executor is not None
        report = _blank_report(node)
        try:
            if isinstance(node, Wire):
                await self.executor.check_wire(node, report)
            else:
                await self.executor.check_state(node, report)
        except LabError as exc:  # the line was accepted: its failure goes in the book
            self.book.note(f"{format_node(node)}: {exc}", time.monotonic_ns(), "fault")
            return
        now = time.monotonic_ns()
        if report.divergence is not None:
            self.book.note(f"{report.text} diverged: {report.divergence}", now, "diverged", report.process)
        else:
            held = "; ".join(report.notes) or "as stated"
            self.book.note(f"{report.text}: {held}", now, "notice", report.process)

    def _call_finished(self, handle: CallHandle) -> Callable[[asyncio.Future], None]:
        def finished(future: asyncio.Future) -> None:
            if future.cancelled():
                return
            exc = future.exception()
            if exc is not None:
                self._settle(handle.call_id)
                self.book.fail_call(handle.call_id, str(exc), time.monotonic_ns())

        return finished

    # What the panes show.

    def allow_lesson_programs(self) -> None:
        """sockplay's own lesson may run its program (lesson 25's) without --allow-exec, until the lab restarts."""
        if self.lab is not None:
            self.lab.lifecycle.outside.allowed = True

    async def refresh(self) -> dict[str, Sequence[dict]]:
        """Ask every live process what the kernel says of its sockets."""
        if self.lab is None:
            return {}
        self.snapshot = await self.lab.follow_sockets()
        hosts = self.lab.network.hosts
        self.host_counters = await hosts.all_counters() if hosts is not None else {}
        await self.wire.refresh()
        return self.snapshot

    def view(self) -> LabView:
        if self.lab is None:
            return LabView()
        blocked: dict[str, list[str]] = {}
        for process, text in self.pending.values():
            blocked.setdefault(process, []).append(text)
        view = build_view(
            self.lab,
            self.snapshot,
            self.tracked_names,
            blocked,
            self.host_counters,
            self.view_cache,
            self.tracked_version,
        )
        return self.wire.decorate(view)

    # Queries for the panes: what widgets ask instead of reaching into the lab.

    def now_ns(self) -> int:
        """The lab's clock (CLOCK_MONOTONIC), for notes in the event book."""
        return self.lab.now_ns() if self.lab is not None else time.monotonic_ns()

    @property
    def process_count(self) -> int:
        """How many processes the lab has (living, or dead and not yet reaped)."""
        return len(self.lab.processes) if self.lab is not None else 0

    def has_process(self, name: str) -> bool:
        return self.lab is not None and name in self.lab.processes

    def names_of(self, process: str) -> dict[str, int]:
        """The variable names a process has now (name -> descriptor); none for an unknown process."""
        proc = self.lab.processes.get(process) if self.lab is not None else None
        return dict(proc.names) if proc is not None else {}

    def fresh_var(self, process: str, base: str, also_taken: tuple[str, ...] = ()) -> str:
        """A variable name free in `process`: `base`, or `base2`, `base3`, ..."""
        return fresh_name(base, set(self.names_of(process)) | set(also_taken))

    def fresh_process_name(self, base: str) -> str:
        """A process name not in the lab (nor a thread's): `base`, or `base2`, `base3`, ..."""
        return fresh_name(base, {*self.lab.processes, *self.lab.threads} if self.lab is not None else set())

    def connect_targets(self, sock: SocketView, view: LabView) -> list[str]:
        """PROC.VAR of every other socket that listens (or, for UDP, is bound) with a known address."""
        if self.lab is None:
            return []
        targets = []
        for proc in view.processes:
            engine_proc = self.lab.processes.get(proc.name)
            if engine_proc is None or not proc.alive:
                continue
            for other in proc.sockets:
                if other.key == sock.key or other.name is None or other.name not in engine_proc.addresses:
                    continue
                if engine_proc.names.get(other.name) != other.fd:
                    continue
                if (sock.is_stream and other.listening) or (not sock.is_stream and not other.is_stream):
                    targets.append(f"{proc.name}.{other.name}")
        return targets

    @property
    def capture_on(self) -> bool:
        return self.lab is not None and self.lab.capture is not None

    @property
    def no_capture_reason(self) -> str | None:
        """Why there is no packet capture (None: there is one, or the lab is not up yet)."""
        if self.lab is None or self.lab.capture is not None:
            return None
        return self.lab.capture_reason or "packet capture is not available"

    def packets(self) -> list[AnyPacket]:
        """The packets captured so far (the lab keeps the latest 200,000)."""
        return list(self.lab.packets) if self.lab is not None else []

    def environment(self) -> tuple[str, dict[str, str]]:
        """What the lab runs in (network kind, sysctls), as a recording's header states it."""
        from playground.recording import lab_environment

        assert self.lab is not None
        return lab_environment(self.lab)

    def forbid_exec(self) -> None:
        """From now on this lab runs no outside program (a replay's recording may come from anywhere)."""
        self.allow_exec = False
        if self.lab is not None:
            self.lab.lifecycle.outside.allowed = False

    async def attach(self, name: str, pid: int) -> None:
        """Watch a running process under strace (`sockplay trace -p PID`); LabError if it cannot be."""
        if self.lab is None:
            raise LabError("the lab has not started")
        await self.lab.lifecycle.outside.attach(name, pid)

    def start_recording(self, recording: SessionRecording, header_extra: dict[str, str] | None = None) -> None:
        """Record this session's lab into `recording` from now on."""
        assert self.lab is not None
        recording.start(self.lab, header_extra)

    def new_runner(self, step_timeout: float | None = None) -> Runner:
        """A Runner on this session's lab (replay and lesson steps run through it)."""
        from playground.runner import Runner

        assert self.lab is not None
        return Runner(self.lab) if step_timeout is None else Runner(self.lab, step_timeout)

    def kill_all_now(self) -> None:
        """Synchronous last resort (atexit): SIGKILL every lab process."""
        if self.lab is not None:
            self.lab.kill_all_now()

    def completion_context(self, default_actor: str | None) -> CompletionContext:
        ctx = CompletionContext(default_actor=default_actor)
        if self.lab is None:
            return ctx
        for name, proc in self.lab.processes.items():
            ctx.processes[name] = set(proc.names)
            ctx.children[name] = set(proc.children)
            for var in (*proc.addresses, *proc.paths):  # IP addresses, then AF_UNIX paths
                ctx.addresses.append(f"{name}.{var}")
        for name, thread in self.lab.threads.items():  # an actor too, with its process's names
            ctx.processes[name] = set(thread.names)
            ctx.children[name] = set(thread.children)
        return ctx


def _as_stated(call: str, outcome: Outcome) -> str:
    from playground.script.format import format_outcome  # (the script's modules load after the first frame)

    return f"{call} {format_outcome(outcome)} as stated"


def _blank_report(node: Node) -> StepReport:
    """A report for a typed line, for the executor to fill in."""
    from playground.executor import StepReport  # the engine loads after the first frame
    from playground.script.model import Line

    return StepReport(Line(0, node, ""), "")


def _track_names(tracked: dict[str, FdVars], lab: Lab | None, event: CallDone) -> bool:
    """Note the name a call gave a descriptor (or took from it); whether the tracked names changed."""
    from playground.script.model import IntArg, NameArg, Step  # (loaded by then: a call was made)

    node = event.node
    if not isinstance(node, Step) or event.result.outcome.death is not None:
        return False
    value = event.result.outcome.value
    call = node.call.name
    names = tracked.get(event.process)
    if names is None:
        names = tracked[event.process] = FdVars()
    if call in ("socket", "accept", "dup", "accept4") and node.var and isinstance(value, int) and value >= 0:
        names[value] = node.var
        return True
    if call == "close" and value == 0 and node.call.args:
        arg = node.call.args[0]
        fd = None
        if isinstance(arg, IntArg):
            fd = arg.value
        elif isinstance(arg, NameArg) and lab is not None:
            proc = lab.processes.get(event.process)
            fd = proc.names.get(arg.name) if proc is not None else None
        if fd is not None:
            names.pop(fd, None)
            return True
    return False
