"""The lab: real processes with real sockets, driven from asyncio.

    lab = await Lab.start()
    await lab.spawn("server")
    result = await lab.call(step)  # a parsed Step; playground.executor carries out whole lines
    snapshot = await lab.inspect()
    await lab.shutdown()

Every event (calls started, pending, done; signals; deaths) goes to the
subscribers registered with `subscribe`. `Lab` coordinates: it sends calls,
learns names, addresses and children from their results, and reports events.
Its parts, each a module beside this one:

    lab_process     Process and CallHandle: a lab process and a call sent to one
    lab_lifecycle   starting, verifying, signalling and reaping lab processes
    lab_channel     frames to and from lab processes, checked before they are believed
    lab_labels      packet capture, each end named by its socket (`proc.var`)
    lab_inspection  the kernel's view of the lab's sockets (getsockopt snapshots, sock_diag)
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence

from playground import lab_channel, lab_lifecycle, lab_threads, protocol, resolve_many
from playground.capture import Capture
from playground.constants import SIGNAL_NAMES
from playground.errors import LabError
from playground.events import (
    CallDone,
    CallPending,
    CallResult,
    CallStarted,
    DirectiveDone,
    Event,
    Notice,
    PacketsSeen,
    SignalCaught,
)
from playground.lab_channel import ChannelError, Receiver
from playground.lab_inspection import Inspector
from playground.lab_labels import PacketLabels
from playground.lab_limits import Limits
from playground.lab_process import CallHandle, Process
from playground.lab_unix import learn_names, name_descriptor
from playground.netlab.addressing import host_addresses
from playground.netns import LabNetwork, make_network
from playground.outcomes import to_outcome
from playground.packet_log import PacketLog, StoredPacket
from playground.resolve import resolve_call
from playground.script.format import format_call
from playground.script.model import (
    Address,
    DataArg,
    Death,
    NameArg,
    Node,
    Sleep,
    Step,
)
from playground.script.parser import ProcessScope, Scope
from playground.sockdiag import KernelSocket

PENDING_AFTER = 0.01  # a call that has not returned by then is shown as pending

__all__ = ["Lab", "LabError", "Limits", "Process", "CallHandle", "PENDING_AFTER"]


class Lab:
    """One lab: its processes, the calls sent to them, and the events they make."""

    def __init__(
        self, allow_network: bool = False, network: LabNetwork | None = None, limits: Limits | None = None
    ) -> None:
        self.allow_network = allow_network
        self.network = network or LabNetwork()
        self.processes: dict[str, Process] = {}
        self.threads: dict[str, Process] = {}  # thread actors (playground.lab_threads), by name
        self.limits = limits or Limits()
        self.t0 = time.monotonic_ns()
        self._ids = 0
        self._subscribers: list[Callable[[Event], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._receiver = Receiver()
        self.labels = PacketLabels(self.processes, self._report_packets)
        self.inspector = Inspector(self)
        self.lifecycle = lab_lifecycle.Lifecycle(self)

    # Life cycle.

    @classmethod
    async def start(
        cls,
        allow_network: bool = False,
        host_network: bool = False,
        capture: bool = True,
        pcap: str | None = None,
        limits: Limits | None = None,
        private_only: bool = False,
    ) -> Lab:
        """A new lab; unless host_network, in a private network namespace where the machine allows one.

        With capture, every packet on the lab's network is reported (PacketsSeen), and written to
        pcap if a path is given; `capture_reason` says why, if it cannot be. With private_only,
        a lab that would fall back to the host's network is refused (LabError) instead: a script
        from elsewhere must not reach the host's own loopback services unless host_network says so.
        """
        loop = asyncio.get_running_loop()
        making = loop.run_in_executor(None, make_network, host_network)
        try:
            network = await asyncio.shield(making)
        except asyncio.CancelledError:
            # Stopped meanwhile (a signal): the thread makes the network anyway; take it down
            # once made, so that no namespace holder outlives sockplay's run.
            making.add_done_callback(_close_when_made)
            raise
        if private_only and not host_network and not network.private:
            network.close()
            raise LabError(
                f"refusing to run on the host's network: {network.reason}. There the script could reach "
                "this machine's own loopback services; to run it there anyway, pass --host-network"
            )
        lab = cls(allow_network, network, limits)
        lab._loop = loop
        if capture or pcap:
            lab.labels.start(loop, network, pcap)
        lab_lifecycle.become_subreaper()
        return lab

    @property
    def capture(self) -> Capture | None:
        return self.labels.capture

    @property
    def capture_reason(self) -> str | None:
        return self.labels.capture_reason

    @property
    def packets(self) -> PacketLog:
        return self.labels.packets

    async def capture_flush(self, timeout: float = 1.0) -> bool:
        """Wait until every packet the kernel has queued for the capture so far has been reported.

        On loopback a call's packets are queued before the call returns, so after a
        flush the subscribers have seen all that the calls made until now put on the wire.
        """
        return await self.labels.flush(timeout)

    def _report_packets(self, packets: list[StoredPacket]) -> None:
        self._emit(PacketsSeen(packets, time.monotonic_ns()))

    def endpoint_label(self, local: tuple[str, int], peer: tuple[str, int]) -> str | None:
        """`proc.var` for the socket at this end of a packet, if the lab knows it."""
        return self.labels.endpoint_label(local, peer)

    async def shutdown(self) -> None:
        """End every process the lab started and wait until each is gone."""
        await self.lifecycle.shutdown()

    def kill_all_now(self) -> None:
        """Synchronous last resort (atexit, signal handlers): SIGKILL every process."""
        self.lifecycle.kill_all_now()

    def all_pids(self) -> list[int]:
        """Every process the lab started: lab processes (forked ones too) and its network's holder."""
        pids = [proc.pid for proc in self.processes.values() if proc.remote is None]
        if self.network.holder_pid is not None:
            pids.append(self.network.holder_pid)
        return pids

    # Events.

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def _emit(self, event: Event) -> None:
        for callback in list(self._subscribers):
            callback(event)

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def notice(self, message: str, level: str = "info") -> None:
        self._emit(Notice(message, time.monotonic_ns(), level))

    # Processes.

    def scope(self, default_actor: str | None = None) -> Scope:
        """The names known now, for parsing a typed line."""
        procs = {}
        for name, proc in self.processes.items():
            unstated = sum(1 for h in proc.blocked if not h.stated)
            procs[name] = ProcessScope(
                set(proc.names), set(proc.children), unstated, data=set(proc.data), outside=proc.outside
            )
        hosts = host_addresses(self.network.hosts) | self.lifecycle.remote_hosts.kinds()
        return Scope(lab_threads.with_threads(self.threads, procs), default_actor, hosts)

    async def spawn(self, name: str, host: str | None = None) -> Process:
        return await self.lifecycle.spawn(name, host)

    def process(self, name: str) -> Process:
        proc = self.processes.get(name) or self.threads.get(name)  # a process, or a thread actor
        if proc is None:
            known = ", ".join([*self.processes, *self.threads]) or "none"
            raise LabError(f"no process named {name!r} (known: {known})")
        return proc

    # Reading the channels.

    def _on_readable(self, proc: Process) -> None:
        assert self._loop is not None and proc.channel is not None
        try:
            messages = self._receiver.read(proc)
            if messages is None:
                self._loop.remove_reader(proc.channel.fileno())
                self.lifecycle.channel_closed(proc)
                return
            for message in messages:
                self._on_message(proc, message)
        except ChannelError as exc:
            self.lifecycle.misbehaved(proc, str(exc))

    def _on_message(self, proc: Process, message: tuple) -> None:
        request_id, kind, payload = message
        if kind == protocol.HELLO:
            if proc.hello is not None and not proc.hello.done():
                proc.hello.set_result(payload["pid"])
            return
        if kind == protocol.SIGNAL_IDLE:
            names = tuple(SIGNAL_NAMES.get(s, str(s)) for s in payload["signals"])
            self._emit(SignalCaught(proc.name, names, payload["t"]))
            return
        handle = proc.inflight.get(request_id)
        if handle is None:
            return
        if kind == protocol.DONE and handle.node is not None:
            # Checked before the handle is taken: a call answered falsely ends with its process's death.
            lab_channel.check_call_result(payload)
            untracked = self._check_fork(proc, handle.node, payload)
            if untracked is not None:
                self.notice(untracked, "error")
                payload = {**payload, "untracked": True}
        proc.inflight.pop(request_id, None)
        if handle.timer is not None:
            handle.timer.cancel()
        if kind == protocol.ERROR:
            if not handle.future.done():
                handle.future.set_exception(LabError(f"{proc.name} could not make the call: {payload}"))
            return
        if handle.node is None:  # an inspect or ping request
            if not handle.future.done():
                handle.future.set_result(payload)
            return
        self._finish_call(proc, handle, payload)

    def _finish_call(self, proc: Process, handle: CallHandle, raw: dict, death: Death | None = None) -> None:
        actor, node = handle.process.name, handle.node  # a thread's call comes back on its process's channel
        assert isinstance(node, Step)
        outcome = to_outcome(node.call.name, (raw := resolve_many.on_result(proc, node, raw, self.notice)), death)
        result = CallResult(outcome, raw.get("errno"), raw.get("start", 0), raw.get("dur", 0), raw)
        if death is None:
            self._learn(proc, node, raw, handle.fd)
        if not handle.future.done():
            handle.future.set_result(result)
        self._emit(CallDone(handle.call_id, actor, node, handle.text, result, handle.pending, time.monotonic_ns()))

    def _check_fork(self, proc: Process, step: Node, raw: dict) -> str | None:
        """A fork's pid must be that process's child: sockplay will signal and reap it.

        ChannelError if the process lied; why the child cannot be tracked, if sockplay lacks
        the descriptors to check or watch it (it is then ended with the lab, found by session).
        """
        if not (isinstance(step, Step) and step.call.name == "fork" and raw["ret"] > 0):
            return None
        pid = raw["ret"]
        if not proc.fd_queue:
            raise ChannelError(f"a fork result (pid {pid}) without the child's channel")
        why = f"sockplay has run out of file descriptors: {proc.name}'s child {step.var} (pid {pid}) is not tracked"
        try:
            if not lab_lifecycle.is_child_of(pid, proc):
                raise ChannelError(f"a fork result naming pid {pid}, which is not its child")
        except lab_lifecycle.OutOfDescriptors:
            lab_lifecycle.close_quietly(proc.fd_queue.popleft())
            return why
        if proc.fd_queue[0] < 0:  # its channel came, but sockplay had no number free to take it
            proc.fd_queue.popleft()
            return why
        return None

    def _learn(self, proc: Process, step: Step, raw: dict, fd_arg: int | None) -> None:
        """Update names, addresses and dispositions from a call that returned."""
        ret = raw.get("ret", -1)
        name = step.call.name
        if name in ("socket", "accept", "dup", "epoll_create1") and ret >= 0 and step.var:
            name_descriptor(proc, step.var, ret, raw.get("ino"))  # (an epoll set's name: no inode)
        local = raw.get("local")
        if local:
            self.labels.note_port(local)
        if local is not None and fd_arg is not None and name not in ("accept", "accept4"):
            var = proc.var_for(fd_arg)
            if var is not None:
                host, *rest = local  # the host string shared by every socket on it (10,000 held: issue 13)
                proc.addresses[var] = Address(sys.intern(host) if isinstance(host, str) else host, *rest)
        if local:
            self.labels.learn(proc, step, raw, fd_arg)
        if name == "signal" and ret == 0:
            signame, disposition = step.call.args[0], step.call.args[1]
            assert isinstance(signame, NameArg) and isinstance(disposition, NameArg)  # as the parser checked
            proc.dispositions[signame.name] = disposition.name
        if name == "fork" and ret > 0 and step.var and not raw.get("untracked"):
            self.lifecycle.adopt_child(proc, step.var, ret)
        if name == "waitpid" and ret > 0:
            self.lifecycle.learn_reaped(proc, ret, raw)
        learn_names(self, proc, step, raw, fd_arg)

    # Calls.

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _check_room_for_pending(self, step: Step) -> None:
        """Each call in progress holds a thread in its process: a script may not block without end."""
        in_flight = sum(1 for p in self.processes.values() for h in p.inflight.values() if h.node is not None)
        if in_flight >= self.limits.pending:
            raise LabError(
                f"{in_flight} calls are blocked or in progress, the lab's limit: `{format_call(step.call)}` "
                "is not made (raise the limit with --max-pending)"
            )

    def submit(
        self,
        step: Step,
        text: str | None = None,
        spin: bool = False,
        linger: bool = False,
        wake: str | None = None,
    ) -> CallHandle:
        """Send a step's call to its process; the handle's future gives the result.

        With spin, poll the channel for a moment first: most calls return
        within microseconds, and sleeping in epoll costs more than that. With
        linger, the process polls for its next request a moment before it
        sleeps (say so when one of the next few calls will be the same process's).
        With wake, the process of that name starts polling now (name the process
        whose call comes next): its wake-up overlaps this call instead of delaying its own.
        """
        assert self._loop is not None and step.actor is not None
        proc = self.process(step.actor)
        if not proc.alive:
            raise LabError(f"{proc.name} is {proc.state}: it makes no more calls")
        self._check_room_for_pending(step)
        if step.call.name == "fork":
            self.lifecycle.check_room_for_process()
        _check_call_data(step)
        name, args, fd = resolve_call(self, proc, step)
        if name == "exit":
            proc.exit_request = args[0]
        handle = CallHandle(self.next_id(), proc, step, "", self._loop.create_future(), time.monotonic_ns(), fd=fd)
        proc.inflight[handle.call_id] = handle
        assert proc.channel is not None
        frame = protocol.encode((handle.call_id, "call", (name, args, linger, *lab_threads.tag(proc))))
        del args  # the call's data, built for this frame only
        if len(frame) > protocol.MAX_FRAME:  # the process would take it for a broken channel and quit
            proc.inflight.pop(handle.call_id, None)
            raise LabError(f"{step.call.name}'s request is {len(frame)} bytes, more than a call can carry")
        try:
            lab_channel.send(self._loop, lab_threads.owner_of(proc), frame)
        except OSError as exc:
            proc.inflight.pop(handle.call_id, None)
            raise LabError(f"{proc.name} cannot be reached: {exc.strerror}") from None
        del frame
        handle.text = text or _call_text(step)  # written after the call is sent: its data's text never delays it
        if wake is not None and wake != proc.name:
            self._wake(wake)
        self._emit(CallStarted(handle.call_id, proc.name, step, handle.text, handle.sent_ns, fd))
        if spin:
            lab_channel.spin_for(handle, self._on_readable)
            if handle.future.done():
                return handle
        handle.timer = self._loop.call_later(PENDING_AFTER, self._mark_pending, handle)
        return handle

    def _wake(self, name: str) -> None:
        """Have a process start polling for its next request now (it is next, after the call just sent)."""
        proc = self.processes.get(name)
        if proc is None or not proc.alive or proc.channel is None:
            return
        assert self._loop is not None
        try:
            lab_channel.send(self._loop, proc, lab_channel.WAKE_FRAME)
        except OSError:
            pass

    def _mark_pending(self, handle: CallHandle) -> None:
        handle.timer = None
        if handle.future.done():
            return
        handle.pending = True
        if handle not in handle.process.blocked:
            handle.process.blocked.append(handle)
        self._emit(CallPending(handle.call_id, handle.process.name, handle.text, time.monotonic_ns()))

    async def call(self, step: Step) -> CallResult:
        return await self.submit(step).future

    def oldest_unstated(self, actor: str) -> CallHandle | None:
        proc = self.process(actor)
        for handle in proc.blocked:
            if not handle.stated:
                return handle
        return None

    # Inspection.

    async def inspect(self, name: str | None = None) -> dict[str, list[dict]]:
        """The kernel's view of every live process's sockets (or one process's)."""
        return await self.inspector.snapshot(name)

    async def follow_sockets(self) -> dict[str, Sequence[dict]]:
        """The kernel's view of every live process's sockets, each reading only what may have changed."""
        return await self.inspector.follow()

    def label_for(self, local: tuple[str, int], peer: tuple[str, int]) -> tuple[str, str] | None:
        """(process, `proc.var`) of the socket with these endpoints, if the lab knows it."""
        return self.labels.label_for(local, peer)

    def kernel_sockets(self, skip_idle: bool = False) -> list[tuple[str | None, str | None, KernelSocket]]:
        """The kernel's TCP sockets in the lab's network, each with the lab socket it was (if known)."""
        return self.inspector.kernel_sockets(skip_idle)  # skip_idle: see Inspector.kernel_sockets

    async def kernel_sockets_aside(self, skip_idle: bool = False) -> list[tuple[str | None, str | None, KernelSocket]]:
        return await self.inspector.kernel_sockets_aside(skip_idle)  # the dump in a thread

    async def socket_state(self, process: str, var: str) -> str:
        """The kernel's TCP state of a named socket (see Inspector.socket_state)."""
        return await self.inspector.socket_state(process, var)

    def check_sleep(self, seconds: float) -> None:
        """A sleep (or +DELAY) longer than the lab allows is refused, saying how to allow it."""
        if seconds > self.limits.sleep:
            raise LabError(
                f"a sleep of {seconds:g} s is longer than the limit of {self.limits.sleep:g} s "
                "(raise it with --max-sleep)"
            )

    # Directives and lines.

    async def kill(self, name: str, signame: str = "SIGTERM") -> None:
        await self.lifecycle.kill(name, signame)

    async def wait_dead(self, proc: Process, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while proc.death is None and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        return proc.death is not None

    async def sleep(self, node: Sleep, text: str) -> None:
        """A `sleep` line: wait, then tell the subscribers it is done (as kill does when it signals)."""
        await asyncio.sleep(node.seconds)
        self._emit(DirectiveDone(node, text, time.monotonic_ns()))


def _close_when_made(made: asyncio.Future[LabNetwork]) -> None:
    """Take down a network that a stopped start made after all."""
    if not made.cancelled() and made.exception() is None:
        made.result().close()


def _check_call_data(step: Step) -> None:
    """Refuse, before building it, a call whose data a request frame cannot carry."""
    size = sum(len(arg.value) for arg in step.call.args if isinstance(arg, DataArg))
    if size > protocol.MAX_CALL_DATA:
        raise LabError(
            f"{step.call.name} would send {size} bytes of data; a call carries at most {protocol.MAX_CALL_DATA} bytes"
        )


def _call_text(step: Step) -> str:
    """`actor: [var = ]call(args)`: the step as written, without delay or outcome."""
    if step.var:
        return f"{step.actor}: {', '.join((step.var, *step.more_vars))} = {format_call(step.call)}"
    return f"{step.actor}: {format_call(step.call)}"
