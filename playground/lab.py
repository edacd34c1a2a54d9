"""The lab: real processes with real sockets, driven from asyncio.

    lab = await Lab.start()
    await lab.spawn("server")
    result = await lab.call(step)  # a parsed Step; playground.executor carries out whole lines
    snapshot = await lab.inspect()
    await lab.shutdown()

Every event (calls started, pending, done; signals; deaths) goes to the
subscribers registered with `subscribe`.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from playground import protocol
from playground.capture import Capture, Packet, PcapWriter
from playground.constants import DEFAULT_IGNORED, SIGNAL_NAMES, SIGNALS, STOPPING, TCP_STATES
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
    ProcessEnded,
    ProcessReaped,
    ProcessStarted,
    SignalCaught,
)
from playground.netns import LabNetwork, make_network
from playground.outcomes import to_outcome
from playground.resolve import resolve_call
from playground.script.format import format_call, format_node
from playground.script.model import (
    Address,
    AddressArg,
    Death,
    Kill,
    NameArg,
    Node,
    RefArg,
    Sleep,
    Step,
)
from playground.script.parser import ProcessScope, Scope
from playground.sockdiag import KernelSocket, dump_tcp, open_diag_socket

PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
PENDING_AFTER = 0.01  # a call that has not returned by then is shown as pending
SPAWN_TIMEOUT = 10.0
RECV_BUFFER = 256 * 1024
SPIN_NS = 150_000
_WAKE_FRAME = protocol.encode((0, "wake", None))
_PR_SET_CHILD_SUBREAPER = 36

__all__ = ["Lab", "LabError", "Process", "CallHandle"]


@dataclass
class CallHandle:
    """A call sent to a process: its future resolves to the CallResult."""

    call_id: int
    process: Process
    node: Node
    text: str
    future: asyncio.Future
    sent_ns: int
    pending: bool = False
    stated: bool = False  # a `...` completion line has claimed this outcome
    timer: asyncio.TimerHandle | None = None
    fd: int | None = None  # the descriptor the call acts on, if any


@dataclass
class Process:
    """A lab process as the lab sees it."""

    name: str
    pid: int
    parent: Process | None = None
    names: dict[str, int] = field(default_factory=dict)  # socket variables -> fd
    inodes: dict[str, int] = field(default_factory=dict)  # socket variables -> the socket's inode
    addresses: dict[str, Address] = field(default_factory=dict)  # variable -> last bound address
    children: dict[str, Process] = field(default_factory=dict)
    dispositions: dict[str, str] = field(default_factory=dict)
    death: Death | None = None
    zombie: bool = False
    reaped: bool = False
    channel: socket.socket | None = None
    pidfd: int | None = None
    inflight: dict[int, CallHandle] = field(default_factory=dict)
    blocked: deque[CallHandle] = field(default_factory=deque)
    frames: protocol.FrameBuffer = field(default_factory=protocol.FrameBuffer)
    fd_queue: deque[int] = field(default_factory=deque)
    outbox: deque[memoryview] = field(default_factory=deque)  # frames the channel could not take yet
    hello: asyncio.Future | None = None
    exit_request: int | None = None  # the status of an exit() call in progress

    @property
    def alive(self) -> bool:
        return self.death is None

    @property
    def state(self) -> str:
        if self.death is None:
            return "running"
        if self.zombie:
            return "zombie"
        return str(self.death)

    def var_for(self, fd: int) -> str | None:
        """The name most recently given to this descriptor (an older name may still hold its number)."""
        found = None
        for var, number in self.names.items():
            if number == fd:
                found = var
        return found

    def disposition(self, signame: str) -> str:
        return self.dispositions.get(signame, "SIG_DFL")

    def fatal(self, signame: str) -> bool:
        """Whether this signal, sent now, ends the process."""
        if signame == "SIGKILL":
            return True
        disp = self.disposition(signame)
        return disp == "SIG_DFL" and signame not in DEFAULT_IGNORED and signame not in STOPPING


class Lab:
    def __init__(self, allow_network: bool = False, network: LabNetwork | None = None) -> None:
        self.allow_network = allow_network
        self.network = network or LabNetwork()
        self.processes: dict[str, Process] = {}
        self.t0 = time.monotonic_ns()
        self._ids = 0
        self._subscribers: list[Callable[[Event], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._recv_view = memoryview(bytearray(RECV_BUFFER))
        # (local, peer) of each connection the lab made -> (process, "proc.var")
        self.owners: dict[tuple[tuple[str, int], tuple[str, int]], tuple[str, str]] = {}
        self._host_diag: socket.socket | None = None
        self.capture: Capture | None = None
        self.capture_reason: str | None = None
        self.packets: deque[Packet] = deque(maxlen=200_000)
        self._lab_ports: set[int] = set()
        self._held: list[Packet] = []
        self._flush_waiters: list[asyncio.Future] = []
        self._keep: Callable[[Packet], bool] | None = None
        self._pcap: PcapWriter | None = None

    # Life cycle.

    @classmethod
    async def start(
        cls, allow_network: bool = False, host_network: bool = False, capture: bool = True, pcap: str | None = None
    ) -> Lab:
        """A new lab; unless host_network, in a private network namespace where the machine allows one.

        With capture, every packet on the lab's network is reported (PacketsSeen), and written to
        pcap if a path is given; `capture_reason` says why, if it cannot be.
        """
        loop = asyncio.get_running_loop()
        network = await loop.run_in_executor(None, make_network, host_network)
        lab = cls(allow_network, network)
        lab._loop = loop
        if capture or pcap:
            lab._start_capture(pcap)
        try:  # orphans of lab processes come back to us, so none is left a zombie
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        except (OSError, AttributeError):
            pass
        return lab

    def _start_capture(self, pcap: str | None) -> None:
        sock = self.network.packet_socket
        keep = None
        if sock is None and not self.network.private:
            try:  # on the host's loopback: capture there, keeping only the lab's own traffic
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
                sock.bind(("lo", 0))
                keep = self._is_lab_packet
            except OSError as exc:
                self.capture_reason = f"packet capture needs CAP_NET_RAW on the host's network ({exc.strerror})"
                return
        if sock is None:
            self.capture_reason = self.network.reason or "packet capture is not available"
            return
        self._pcap = PcapWriter(pcap) if pcap else None
        self._keep = keep
        self.capture = Capture(sock, self._packets_from_thread, self._drained_from_thread)
        self.capture.start()

    def _is_lab_packet(self, packet: Packet) -> bool:
        ports = self._lab_ports
        return (
            packet.src[1] in ports
            or packet.dst[1] in ports
            or (
                packet.icmp_about is not None and (packet.icmp_about[0][1] in ports or packet.icmp_about[1][1] in ports)
            )
        )

    def _packets_from_thread(self, packets: list[Packet]) -> None:
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._on_packets, packets)
            except RuntimeError:
                pass

    def _drained_from_thread(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._on_drained)
            except RuntimeError:
                pass

    def _on_drained(self) -> None:
        waiters, self._flush_waiters = self._flush_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def capture_flush(self, timeout: float = 1.0) -> bool:
        """Wait until every packet the kernel has queued for the capture so far has been reported.

        On loopback a call's packets are queued before the call returns, so after a
        flush the subscribers have seen all that the calls made until now put on the wire.
        """
        if self.capture is None or self._loop is None:
            return False
        waiter = self._loop.create_future()
        self._flush_waiters.append(waiter)
        self.capture.flush()
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return False
        return True

    def _on_packets(self, packets: list[Packet]) -> None:
        if self._keep is not None:
            # On the host's loopback a packet is the lab's only if its ports are; a port the
            # kernel picked during a call is known once the call's result is in, so hold a while.
            self._held.extend(packets)
            packets = self._release_held()
        if not packets:
            return
        for packet in packets:
            self._label(packet)
            if self._pcap is not None:
                self._pcap.write(packet.wall_ns, packet.frame)
        self.packets.extend(packets)
        self._emit(PacketsSeen(packets, time.monotonic_ns()))

    def _label(self, packet: Packet) -> None:
        if packet.icmp_about is not None:
            packet.dst_label = self.endpoint_label(*packet.icmp_about)
        else:
            packet.src_label = self.endpoint_label(packet.src, packet.dst)
            packet.dst_label = self.endpoint_label(packet.dst, packet.src)

    def _relabel_recent(self) -> None:
        """A call's result named a socket: name it in packets that came in before the result did.

        A connection's packets carry its sockets' names once known, so the handshake a
        listener answered is shown as the accepted socket's, like the rest of that connection.
        """
        for i in range(len(self.packets) - 1, max(-1, len(self.packets) - 256), -1):
            self._label(self.packets[i])

    def _release_held(self) -> list[Packet]:
        assert self._keep is not None
        now = time.monotonic_ns()
        keep, hold = [], []
        for packet in self._held:
            if self._keep(packet):
                keep.append(packet)
            elif now - packet.t_ns < 500_000_000:
                hold.append(packet)
        self._held = hold
        return keep

    def endpoint_label(self, local: tuple[str, int], peer: tuple[str, int]) -> str | None:
        """`proc.var` for the socket at this end of a packet, if the lab knows it."""
        owner = self.owners.get((local, peer))
        if owner is not None:
            return owner[1]
        for proc in self.processes.values():
            for var, address in proc.addresses.items():
                if address.port == local[1] and address.host in (local[0], "0.0.0.0", "::"):
                    return f"{proc.name}.{var}"
        return None

    async def shutdown(self) -> None:
        """End every process the lab started and wait until each is gone."""
        if self._closed:
            return
        self._closed = True
        procs = list(self.processes.values())
        for proc in procs:
            if proc.death is None or proc.zombie:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5.0
        for proc in procs:
            while time.monotonic() < deadline:
                if self._reap_if_ours(proc) or not Path(f"/proc/{proc.pid}").exists():
                    break
                await asyncio.sleep(0.005)
            self._close_channel(proc)
        # Anything still there (a slow machine): wait for it for real, so that no zombie is left
        # to whoever adopts it after sockplay exits. Killed processes go fast; orphans come to us.
        leftover = [p for p in procs if Path(f"/proc/{p.pid}").exists()]
        if leftover:
            await asyncio.get_running_loop().run_in_executor(None, _reap_all, [p.pid for p in leftover], 20.0)
        for proc in procs:
            for handle in list(proc.inflight.values()):
                if not handle.future.done():
                    handle.future.cancel()
        if self.capture is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.capture.stop)
        if self._pcap is not None:
            self._pcap.close()
        self.network.close()
        if self._host_diag is not None:
            self._host_diag.close()

    def all_pids(self) -> list[int]:
        """Every process the lab started: lab processes (forked ones too) and its network's holder."""
        pids = [proc.pid for proc in self.processes.values()]
        if self.network.holder_pid is not None:
            pids.append(self.network.holder_pid)
        return pids

    def kill_all_now(self) -> None:
        """Synchronous last resort (atexit, signal handlers): SIGKILL every process."""
        for proc in self.processes.values():
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for proc in self.processes.values():
            try:
                os.waitpid(proc.pid, 0)
            except ChildProcessError:
                pass

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
            procs[name] = ProcessScope(set(proc.names), set(proc.children), unstated)
        return Scope(procs, default_actor)

    async def spawn(self, name: str) -> Process:
        if name in self.processes:
            raise LabError(f"a process named {name!r} already exists")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        debug = os.environ.get("SOCKPLAY_DEBUG")
        child = subprocess.Popen(
            [
                sys.executable,
                "-S",
                "-c",
                f"import sys; sys.path.insert(0, {PACKAGE_ROOT!r}); from playground.worker.main import main; main()",
                str(theirs.fileno()),
                *self.network.worker_args(),
            ],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None if debug else subprocess.DEVNULL,
            env=env,
            close_fds=True,
            restore_signals=True,
            start_new_session=True,
        )
        theirs.close()
        # Popen keeps a handle that would reap the child behind our back.
        child.returncode = 0
        proc = Process(name=name, pid=child.pid)
        self._attach(proc, ours)
        self.processes[name] = proc
        assert proc.hello is not None
        try:
            await asyncio.wait_for(asyncio.shield(proc.hello), SPAWN_TIMEOUT)
        except TimeoutError:
            raise LabError(f"process {name} did not start within {SPAWN_TIMEOUT:g} s") from None
        self._emit(ProcessStarted(name, proc.pid, None, time.monotonic_ns()))
        return proc

    def _attach(self, proc: Process, channel: socket.socket) -> None:
        assert self._loop is not None
        channel.setblocking(False)
        proc.channel = channel
        proc.hello = self._loop.create_future()
        try:
            proc.pidfd = os.pidfd_open(proc.pid)
            self._loop.add_reader(proc.pidfd, self._on_exit, proc)
        except OSError:
            proc.pidfd = None
        self._loop.add_reader(channel.fileno(), self._on_readable, proc)

    def _close_channel(self, proc: Process) -> None:
        assert self._loop is not None
        if proc.channel is not None:
            self._loop.remove_reader(proc.channel.fileno())
            self._loop.remove_writer(proc.channel.fileno())
            proc.channel.close()
            proc.channel = None
        if proc.pidfd is not None:
            self._loop.remove_reader(proc.pidfd)
            os.close(proc.pidfd)
            proc.pidfd = None

    def process(self, name: str) -> Process:
        proc = self.processes.get(name)
        if proc is None:
            known = ", ".join(self.processes) or "none"
            raise LabError(f"no process named {name!r} (known: {known})")
        return proc

    # Reading the channels.

    def _on_readable(self, proc: Process) -> None:
        assert proc.channel is not None
        try:
            size, ancdata, _flags, _addr = proc.channel.recvmsg_into([self._recv_view], socket.CMSG_SPACE(16))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            size, ancdata = 0, []
        data = self._recv_view[:size]
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(payload) - len(payload) % 4
                for i in range(0, usable, 4):
                    proc.fd_queue.append(int.from_bytes(payload[i : i + 4], sys.byteorder))
        if not data:
            assert self._loop is not None
            self._loop.remove_reader(proc.channel.fileno())
            self._channel_closed(proc)
            return
        for message in proc.frames.feed(data):
            self._on_message(proc, message)

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
        handle = proc.inflight.pop(request_id, None)
        if handle is None:
            return
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
        node = handle.node
        assert isinstance(node, Step)
        outcome = to_outcome(node.call.name, raw, death)
        result = CallResult(outcome, raw.get("errno"), raw.get("start", 0), raw.get("dur", 0), raw)
        if death is None:
            self._learn(proc, node, raw, handle.fd)
        if not handle.future.done():
            handle.future.set_result(result)
        self._emit(CallDone(handle.call_id, proc.name, node, handle.text, result, handle.pending, time.monotonic_ns()))

    def _learn(self, proc: Process, step: Step, raw: dict, fd_arg: int | None) -> None:
        """Update names, addresses and dispositions from a call that returned."""
        ret = raw.get("ret", -1)
        name = step.call.name
        if name in ("socket", "accept", "dup") and ret >= 0 and step.var:
            proc.names.pop(step.var, None)  # re-insert: the newest name for a number comes last
            proc.names[step.var] = ret
            if "ino" in raw:
                proc.inodes[step.var] = raw["ino"]
            proc.addresses.pop(step.var, None)
        if raw.get("local"):
            self._lab_ports.add(raw["local"][1])
            if self._held:
                self._on_packets([])
        if "local" in raw and raw["local"] is not None and fd_arg is not None and name != "accept":
            host, port = raw["local"]
            var = proc.var_for(fd_arg)
            if var is not None:
                proc.addresses[var] = Address(host, port)
        self._learn_endpoints(proc, step, raw, fd_arg)
        if self.packets and raw.get("local"):
            self._relabel_recent()
        if name == "signal" and ret == 0:
            signame = step.call.args[0].name  # type: ignore[union-attr]
            proc.dispositions[signame] = step.call.args[1].name  # type: ignore[union-attr]
        if name == "fork" and ret > 0 and step.var:
            self._adopt_child(proc, step.var, ret)
        if name == "waitpid" and ret > 0:
            for child in self._all_children(proc):
                if child.pid == ret:
                    child.reaped = True
                    child.zombie = False
                    if "child" in raw:
                        how, detail = raw["child"]
                        child.death = Death(how, SIGNAL_NAMES.get(detail, detail) if how == "killed" else detail)
                    self._emit(ProcessReaped(child.name, child.pid, proc.name, time.monotonic_ns()))

    def _learn_endpoints(self, proc: Process, step: Step, raw: dict, fd_arg: int | None) -> None:
        """Remember which socket each connection belongs to, for what outlives its descriptor."""
        name = step.call.name
        local = raw.get("local")
        if local is None:
            return
        if name == "accept" and raw.get("ret", -1) >= 0 and raw.get("peer"):
            label = f"{proc.name}.{step.var}" if step.var else f"{proc.name}:fd{raw['ret']}"
            self.owners[(tuple(local), tuple(raw["peer"]))] = (proc.name, label)
        elif name == "connect" and fd_arg is not None:
            target = step.call.args[1]
            address = None
            if isinstance(target, AddressArg):
                address = target.address
            elif isinstance(target, RefArg):
                address = self.processes[target.process].addresses.get(target.name)
            elif isinstance(target, NameArg):
                address = proc.addresses.get(target.name)
            if address is not None:
                var = proc.var_for(fd_arg)
                label = f"{proc.name}.{var}" if var else f"{proc.name}:fd{fd_arg}"
                self.owners[(tuple(local), (address.host, address.port))] = (proc.name, label)

    def label_for(self, local: tuple[str, int], peer: tuple[str, int]) -> tuple[str, str] | None:
        """(process, `proc.var`) of the socket with these endpoints, if the lab knows it."""
        return self.owners.get((tuple(local), tuple(peer)))  # type: ignore[arg-type]

    def kernel_sockets(self) -> list[tuple[str | None, str | None, KernelSocket]]:
        """The kernel's TCP sockets in the lab's network, each with the lab socket it was (if known).

        Cheap (one netlink dump); on the host's network only the lab's own connections are kept.
        """
        diag = self.network.diag_socket
        if diag is None:
            if self._host_diag is None:
                try:
                    self._host_diag = open_diag_socket()
                except OSError:
                    return []
            diag = self._host_diag
        try:
            found = dump_tcp(diag)
        except OSError:
            return []
        out: list[tuple[str | None, str | None, KernelSocket]] = []
        for sock in found:
            owner = self.label_for(sock.local, sock.peer)
            if owner is None and not self.network.private:
                continue
            out.append((owner[0] if owner else None, owner[1] if owner else None, sock))
        return out

    async def socket_state(self, process: str, var: str) -> str:
        """The kernel's TCP state of a named socket: from its descriptor while it is open
        (LISTEN, ESTABLISHED, CLOSE-WAIT, ...), from sock_diag once it is not (FIN-WAIT-2,
        TIME-WAIT, ...), CLOSED when the kernel has no such socket any more."""
        proc = self.process(process)
        fd, inode = proc.names.get(var), proc.inodes.get(var)
        if proc.alive and fd is not None:
            snapshot = await self.inspect(process)
            for sock in snapshot.get(process, []):
                if sock["fd"] == fd and sock.get("socket") and (inode is None or sock["ino"] == inode):
                    if sock["state"] is None:
                        return "CLOSED"  # UDP has no TCP state
                    state = TCP_STATES.get(sock["state"], str(sock["state"]))
                    if state != "CLOSED":
                        return state
                    break  # closed under its descriptor: its connection may wait in TIME-WAIT
        label = f"{process}.{var}"
        for _, name, sock in self.kernel_sockets():
            if name == label:
                return sock.state
        return "CLOSED"

    def _all_children(self, proc: Process) -> list[Process]:
        return [p for p in self.processes.values() if p.parent is proc]

    def _adopt_child(self, parent: Process, name: str, pid: int) -> None:
        if not parent.fd_queue:
            self.notice(f"{parent.name} forked {pid} but sent no channel for it", "error")
            return
        fd = parent.fd_queue.popleft()
        channel = socket.socket(fileno=fd)
        child = Process(
            name=name,
            pid=pid,
            parent=parent,
            names=dict(parent.names),
            inodes=dict(parent.inodes),
            addresses=dict(parent.addresses),
            dispositions=dict(parent.dispositions),
        )
        parent.children[name] = child
        self.processes[name] = child
        self._attach(child, channel)
        self._emit(ProcessStarted(name, pid, parent.name, time.monotonic_ns()))

    # Deaths.

    def _channel_closed(self, proc: Process) -> None:
        if proc.pidfd is None:
            self._on_exit(proc)

    def _on_exit(self, proc: Process) -> None:
        """The pidfd turned readable: the process has ended."""
        if proc.death is not None:
            return
        assert self._loop is not None
        if proc.pidfd is not None:
            self._loop.remove_reader(proc.pidfd)
        death = self._collect(proc)
        if death is None and not proc.zombie:
            # Reaped before we could look, on a kernel whose pidfds keep no exit status.
            death = Death("exited", proc.exit_request if proc.exit_request is not None else "?")
        proc.death = death
        for handle in list(proc.inflight.values()):
            proc.inflight.pop(handle.call_id, None)
            if handle.timer is not None:
                handle.timer.cancel()
            if handle.node is None:  # an inspect or ping the process will never answer
                if not handle.future.done():
                    handle.future.set_result({})
                continue
            self._finish_call(proc, handle, {"ret": None, "start": handle.sent_ns, "dur": 0}, death)
        if proc.channel is not None:
            self._loop.remove_reader(proc.channel.fileno())
        self._emit(ProcessEnded(proc.name, proc.pid, death, proc.zombie, time.monotonic_ns()))
        # Its children, if any, are now ours (we are their subreaper).
        for child in self._all_children(proc):
            if child.zombie:
                self._reap_if_ours(child)

    def _collect(self, proc: Process) -> Death | None:
        """Reap a process that is our own child, or read a zombie's status from /proc."""
        try:
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = 0, 0
            exit_code = _zombie_exit_code(proc.pid)
            if exit_code is None:
                # Reaped already (its parent ignores SIGCHLD): the pidfd still knows how it ended.
                proc.reaped = True
                status = _pidfd_exit_status(proc.pidfd) if proc.pidfd is not None else None
                return None if status is None else _death_from_status(status)
            proc.zombie = True
            return _death_from_status(exit_code)
        if pid == 0:
            # Not a zombie yet (the pidfd may be early); wait for it.
            _, status = os.waitpid(proc.pid, 0)
        proc.reaped = True
        return _death_from_status(status)

    def _reap_if_ours(self, proc: Process) -> bool:
        try:
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return False
        proc.reaped = True
        proc.zombie = False
        if proc.death is None:
            proc.death = _death_from_status(status)
        return True

    # Calls.

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

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
        name, args, fd = resolve_call(self, proc, step)
        if name == "exit":
            proc.exit_request = args[0]
        text = text or _call_text(step)
        handle = CallHandle(self._next_id(), proc, step, text, self._loop.create_future(), time.monotonic_ns(), fd=fd)
        proc.inflight[handle.call_id] = handle
        assert proc.channel is not None
        frame = protocol.encode((handle.call_id, "call", (name, args, linger)))
        try:
            self._send(proc, frame)
        except OSError as exc:
            proc.inflight.pop(handle.call_id, None)
            raise LabError(f"{proc.name} cannot be reached: {exc.strerror}") from None
        if wake is not None and wake != proc.name:
            self._wake(wake)
        self._emit(CallStarted(handle.call_id, proc.name, step, text, handle.sent_ns, fd))
        if spin:
            self._spin_for(handle)
            if handle.future.done():
                return handle
        handle.timer = self._loop.call_later(PENDING_AFTER, self._mark_pending, handle)
        return handle

    def _wake(self, name: str) -> None:
        """Have a process start polling for its next request now (it is next, after the call just sent)."""
        proc = self.processes.get(name)
        if proc is None or not proc.alive or proc.channel is None:
            return
        try:
            self._send(proc, _WAKE_FRAME)
        except OSError:
            pass

    def _send(self, proc: Process, frame: bytes) -> None:
        """Send a frame without blocking the loop: what the channel cannot take now waits in order."""
        assert proc.channel is not None and self._loop is not None
        if proc.outbox:
            proc.outbox.append(memoryview(frame))
            return
        try:
            sent = proc.channel.send(frame)
        except BlockingIOError:
            sent = 0
        if sent < len(frame):
            proc.outbox.append(memoryview(frame)[sent:])
            self._loop.add_writer(proc.channel.fileno(), self._flush_outbox, proc)

    def _flush_outbox(self, proc: Process) -> None:
        assert self._loop is not None
        if proc.channel is None:
            return
        while proc.outbox:
            try:
                sent = proc.channel.send(proc.outbox[0])
            except BlockingIOError:
                return
            except OSError:
                proc.outbox.clear()
                break
            if sent < len(proc.outbox[0]):
                proc.outbox[0] = proc.outbox[0][sent:]
                return
            proc.outbox.popleft()
        self._loop.remove_writer(proc.channel.fileno())

    def _spin_for(self, handle: CallHandle) -> None:
        """Poll the channel briefly for a fast call's result instead of sleeping in epoll."""
        proc = handle.process
        deadline = time.monotonic_ns() + SPIN_NS
        while not handle.future.done() and proc.channel is not None and time.monotonic_ns() < deadline:
            self._on_readable(proc)
            # The process we wait for (or the next one, polling) may share this core:
            # poll, but never keep the core from it.
            os.sched_yield()

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

    async def inspect(self, name: str | None = None) -> dict[str, list[dict]]:
        """The kernel's view of every live process's sockets (or one process's)."""
        procs = [self.process(name)] if name else [p for p in self.processes.values() if p.alive]
        out: dict[str, list[dict]] = {}
        waits = []
        for proc in procs:
            if not proc.alive or proc.channel is None:
                continue
            assert self._loop is not None
            handle = CallHandle(self._next_id(), proc, None, "inspect", self._loop.create_future(), 0)  # type: ignore[arg-type]
            proc.inflight[handle.call_id] = handle
            try:
                self._send(proc, protocol.encode((handle.call_id, "inspect", None)))
            except OSError:
                proc.inflight.pop(handle.call_id, None)
                continue
            waits.append((proc, handle))
        for proc, handle in waits:
            try:
                payload = await asyncio.wait_for(handle.future, 2.0)
            except (TimeoutError, asyncio.CancelledError):
                continue
            if isinstance(payload, dict) and "sockets" in payload:
                out[proc.name] = payload["sockets"]
        return out

    # Directives and lines.

    async def kill(self, name: str, signame: str = "SIGTERM") -> None:
        proc = self.process(name)
        if proc.death is not None and not proc.zombie:
            raise LabError(f"{name} is {proc.state}: there is nothing to signal")
        fatal = proc.fatal(signame)
        os.kill(proc.pid, SIGNALS[signame])
        self._emit(DirectiveDone(Kill(name, signame), format_node(Kill(name, signame)), time.monotonic_ns()))
        if fatal and not proc.zombie:
            await self.wait_dead(proc, 5.0)

    async def wait_dead(self, proc: Process, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while proc.death is None and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        return proc.death is not None

    async def sleep(self, node: Sleep, text: str) -> None:
        """A `sleep` line: wait, then tell the subscribers it is done (as kill does when it signals)."""
        await asyncio.sleep(node.seconds)
        self._emit(DirectiveDone(node, text, time.monotonic_ns()))


def _call_text(step: Step) -> str:
    """`actor: [var = ]call(args)`: the step as written, without delay or outcome."""
    if step.var:
        return f"{step.actor}: {step.var} = {format_call(step.call)}"
    return f"{step.actor}: {format_call(step.call)}"


def _reap_all(pids: list[int], timeout: float) -> None:
    """Reap these processes as they become ours (SIGKILLed already), for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    remaining = set(pids)
    while remaining and time.monotonic() < deadline:
        for pid in list(remaining):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    remaining.discard(pid)
                    continue
            except ChildProcessError:  # not (yet) ours: reaped by its parent, or still being adopted
                pass
            if not Path(f"/proc/{pid}").exists():
                remaining.discard(pid)
        if remaining:
            time.sleep(0.01)


def _zombie_exit_code(pid: int) -> int | None:
    """The wait status of a zombie that is not our child, from /proc/PID/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    if not fields or fields[0] != "Z":
        return None
    try:
        return int(fields[-1])
    except ValueError:
        return None


_PIDFD_INFO = struct.Struct("=QQ11Ii")
_PIDFD_GET_INFO = (3 << 30) | (_PIDFD_INFO.size << 16) | (0xFF << 8) | 11
_PIDFD_INFO_EXIT = 8


def _pidfd_exit_status(pidfd: int) -> int | None:
    """The wait status of a process already reaped, from its pidfd (Linux 6.15 and later)."""
    buf = bytearray(_PIDFD_INFO.pack(_PIDFD_INFO_EXIT, 0, *([0] * 11), 0))
    try:
        fcntl.ioctl(pidfd, _PIDFD_GET_INFO, buf)
    except OSError:
        return None
    fields = _PIDFD_INFO.unpack(buf)
    return fields[-1] if fields[0] & _PIDFD_INFO_EXIT else None


def _death_from_status(status: int) -> Death:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return Death("killed", SIGNAL_NAMES.get(sig, str(sig)))
    if os.WIFEXITED(status):
        return Death("exited", os.WEXITSTATUS(status))
    return Death("exited", "?")
