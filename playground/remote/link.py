"""One ssh connection to a remote host, and the lab processes' channels relayed over it.

Each remote lab process gets a local socketpair: the lab holds one end as that
process's channel (exactly as for a local process) and the link relays the
other end's bytes to the agent, tagged with the channel's number. A fork's
child's channel arrives from the agent as a new number; the link makes a
socketpair for it and passes the lab its end with the fork's result, as a local
lab process passes its own. The lab signals a remote process through its
RemoteProcess (by channel, never by a pid on this machine), and learns how it
ended from the agent.
"""

from __future__ import annotations

import array
import asyncio
import os
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from playground import protocol
from playground.capture import Packet
from playground.errors import LabError
from playground.remote.payload import GREETING, payload, remote_command
from playground.remote.ssh import dropped, failure, ssh_argv
from playground.remote.wire import RemoteWire
from playground.script.model import RemoteHost

CHUNK = 256 * 1024
OPEN_TIMEOUT = 30.0
SPAWN_TIMEOUT = 10.0
PINGS = 3
_MAX_STDERR = 8192


@dataclass
class Relay:
    """sockplay's side of one remote lab process's channel."""

    number: int
    sock: socket.socket  # the end the link relays (the lab holds the other)
    inode: int
    pending_fds: deque[socket.socket] = field(default_factory=deque)  # lab ends of forks' channels, to pass on
    outbox: deque[tuple[bytes, list[socket.socket]]] = field(default_factory=deque)
    ended: tuple[int | None, bool] | None = None  # (wait status, zombie) once the agent says it ended
    lost: bool = False  # the connection dropped before it ended


class RemoteProcess:
    """What the lab knows of a remote lab process beyond a local one: its host, and how to reach it."""

    def __init__(self, link: RemoteLink, relay: Relay | None) -> None:
        self.link = link
        self.relay = relay  # None: a channel the link does not know (it is gone already)

    @property
    def host(self) -> str:
        return self.link.host.name

    def signal(self, signum: int) -> None:
        if self.relay is not None:
            self.link.send(("signal", self.relay.number, signum))

    def death(self) -> tuple[int | None, bool] | None:
        """(wait status or None if unknown, whether a zombie) once it has ended."""
        if self.relay is None or self.relay.lost:
            return None, False
        return self.relay.ended

    def child(self, fd: int) -> RemoteProcess:
        """The remote process whose channel the lab received as fd (a fork's child)."""
        try:
            relay = self.link.by_inode.get(os.fstat(fd).st_ino)
        except OSError:
            relay = None
        return RemoteProcess(self.link, relay)


class RemoteLink:
    """The connection to one remote host: ssh, the agent at its far end, and the channels relayed."""

    def __init__(
        self, host: RemoteHost, say: Callable[[str, str], None], on_packets: Callable[[list[Packet]], None]
    ) -> None:
        self.host = host
        self.say = say
        self.on_packets = on_packets
        self.wire = RemoteWire()
        self.ssh: subprocess.Popen | None = None
        self.info: dict = {}
        self.rtt_ms: float | None = None
        self.clock_offset_ns: int = 0  # remote clock minus ours
        self.relays: dict[int, Relay] = {}
        self.by_inode: dict[int, Relay] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._frames = protocol.FrameBuffer()
        self._stdout = bytearray()
        self._greeting: str | None = None
        self._stderr = bytearray()
        self._outbox: deque[memoryview] = deque()
        self._waiting: dict[tuple[str, int], asyncio.Future] = {}
        self._next = 0
        self.closed = False
        self.dropped = False

    # Opening.

    async def open(self) -> None:
        """Start ssh and the agent; LabError saying why if the host cannot be used."""
        self._loop = asyncio.get_running_loop()
        try:
            self.ssh = subprocess.Popen(
                ssh_argv(self.host.destination) + [remote_command()],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C meant for sockplay is not ssh's: sockplay ends it in order
            )
        except OSError as exc:
            raise LabError(f"remote host {self.host.name}: cannot run ssh ({exc.strerror})") from None
        assert self.ssh.stdin and self.ssh.stdout and self.ssh.stderr
        for pipe in (self.ssh.stdin, self.ssh.stdout, self.ssh.stderr):
            os.set_blocking(pipe.fileno(), False)
        self._loop.add_reader(self.ssh.stdout.fileno(), self._on_stdout)
        self._loop.add_reader(self.ssh.stderr.fileno(), self._on_stderr)
        hello = self._expect("hello", 0)
        self._write(payload())
        try:
            self.info = await asyncio.wait_for(hello, OPEN_TIMEOUT)
            await self._measure()
        except TimeoutError:
            self.abort()
            raise LabError(
                f"remote host {self.host.name} ({self.host.destination}): no answer within {OPEN_TIMEOUT:g} s"
            ) from None
        except LabError:
            self.abort()
            raise

    async def _measure(self) -> None:
        """The round trip over the connection (the best of a few), and the remote clock's offset from ours."""
        best = min([await self.ping() for _ in range(PINGS)])
        self.rtt_ms = best[0] / 1e6
        self.clock_offset_ns = best[1]

    async def ping(self) -> tuple[int, int]:
        """One round trip to the agent: (its nanoseconds, the remote clock minus ours halfway through)."""
        self._next += 1
        pong = self._expect("pong", self._next)
        t0 = time.time_ns()
        self.send(("ping", self._next))
        remote_ns = await asyncio.wait_for(pong, SPAWN_TIMEOUT)
        t1 = time.time_ns()
        return t1 - t0, remote_ns - (t0 + t1) // 2

    def _expect(self, kind: str, number: int) -> asyncio.Future:
        assert self._loop is not None
        future = self._loop.create_future()
        self._waiting[(kind, number)] = future
        return future

    # Spawning.

    async def spawn(self) -> tuple[int, socket.socket, RemoteProcess]:
        """Start a lab process on the remote host: (its remote pid, the lab's end of its channel, its handle)."""
        if self.dropped or self.closed:
            raise LabError(f"the connection to {self.host.name} ({self.host.destination}) is gone")
        self._next += 1
        number = self._next
        lab_end, relay = self._new_relay(number)
        started = self._expect("spawned", number)
        self.send(("spawn", number))
        try:
            pid = await asyncio.wait_for(started, SPAWN_TIMEOUT)
        except TimeoutError:
            lab_end.close()
            raise LabError(f"{self.host.name} did not start a process within {SPAWN_TIMEOUT:g} s") from None
        except LabError:
            lab_end.close()
            raise
        return pid, lab_end, RemoteProcess(self, relay)

    def _new_relay(self, number: int) -> tuple[socket.socket, Relay]:
        assert self._loop is not None
        lab_end, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.setblocking(False)
        relay = Relay(number, ours, os.fstat(lab_end.fileno()).st_ino)
        self.relays[number] = relay
        self.by_inode[relay.inode] = relay
        self._loop.add_reader(ours.fileno(), self._on_relay, relay)
        return lab_end, relay

    # Relaying: the lab's side to the agent.

    def _on_relay(self, relay: Relay) -> None:
        try:
            data = relay.sock.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the lab closed its end (it is done with the process)
            self._drop_relay(relay)
            return
        self.send(("data", relay.number, data))

    def send(self, message: tuple) -> None:
        if self.ssh is None or self.closed or self.dropped:
            return
        self._write(protocol.encode(message))

    def _write(self, frame: bytes) -> None:
        assert self.ssh is not None and self.ssh.stdin is not None and self._loop is not None
        if self._outbox:
            self._outbox.append(memoryview(frame))
            return
        try:
            sent = os.write(self.ssh.stdin.fileno(), frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            return  # ssh has gone: its stdout's end says so
        if sent < len(frame):
            self._outbox.append(memoryview(frame)[sent:])
            self._loop.add_writer(self.ssh.stdin.fileno(), self._flush)

    def _flush(self) -> None:
        assert self.ssh is not None and self.ssh.stdin is not None and self._loop is not None
        while self._outbox:
            try:
                sent = os.write(self.ssh.stdin.fileno(), self._outbox[0])
            except BlockingIOError:
                return
            except OSError:
                self._outbox.clear()
                break
            if sent < len(self._outbox[0]):
                self._outbox[0] = self._outbox[0][sent:]
                return
            self._outbox.popleft()
        self._loop.remove_writer(self.ssh.stdin.fileno())

    # Relaying: the agent to the lab's side.

    def _on_stderr(self) -> None:
        assert self.ssh is not None and self.ssh.stderr is not None and self._loop is not None
        try:
            data = os.read(self.ssh.stderr.fileno(), 4096)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            self._loop.remove_reader(self.ssh.stderr.fileno())
            return
        self._stderr += data
        del self._stderr[:-_MAX_STDERR]

    def _on_stdout(self) -> None:
        assert self.ssh is not None and self.ssh.stdout is not None
        try:
            data = os.read(self.ssh.stdout.fileno(), CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._connection_ended()
            return
        if self._greeting is None:
            rest = self._find_greeting(data)
            if rest is None:
                return
            data = rest
        try:
            messages = self._frames.feed(data)
        except (ValueError, EOFError, TypeError):
            self.say(f"{self.host.name} sent what its agent never sends: the connection is closed", "error")
            self.abort()
            return
        for message in messages:
            self._on_message(message)

    def _find_greeting(self, data: bytes) -> bytes | None:
        """What follows the agent's greeting line, once it has come (a login script may print lines before it)."""
        self._stdout += data
        while b"\n" in self._stdout:
            line, _, rest = bytes(self._stdout).partition(b"\n")
            self._stdout[:] = rest
            if line.startswith(GREETING):
                self._greeting = line[len(GREETING) :].decode("ascii", "replace")
                self._stdout.clear()
                return rest
        if len(self._stdout) > _MAX_STDERR and self.ssh is not None:  # no greeting in all that: not our bootstrap
            self.ssh.kill()
            self._connection_ended()
        return None

    def _on_message(self, message: tuple) -> None:
        if not isinstance(message, tuple) or not message or not isinstance(message[0], str):
            return
        kind = message[0]
        if kind == "data" and len(message) == 3:
            relay = self.relays.get(message[1])
            if relay is not None and isinstance(message[2], bytes):
                self._deliver(relay, message[2])
        elif kind == "child" and len(message) == 3:
            parent = self.relays.get(message[1])
            if parent is not None and isinstance(message[2], int) and message[2] not in self.relays:
                lab_end, _relay = self._new_relay(message[2])
                parent.pending_fds.append(lab_end)
        elif kind == "ended" and len(message) == 4:
            relay = self.relays.get(message[1])
            if relay is not None:
                status = message[2] if isinstance(message[2], int) else None
                relay.ended = (status, bool(message[3]))
                self._finish_relay(relay)
        elif kind == "frames" and len(message) == 2:
            packets = self.wire.packets(message[1], self.clock_offset_ns)
            if packets:
                self.on_packets(packets)
        elif kind in ("hello", "spawned", "pong", "failed") and len(message) >= 2:
            self._answer(kind, message)

    def _answer(self, kind: str, message: tuple) -> None:
        value: object
        if kind == "hello":
            future = self._waiting.pop(("hello", 0), None)
            value = message[1] if isinstance(message[1], dict) else {}
        elif kind == "failed":
            future = self._waiting.pop(("spawned", message[1]), None)
            if future is not None and not future.done():
                future.set_exception(LabError(f"{self.host.name} could not start a process: {message[2]}"))
            return
        else:
            future = self._waiting.pop((kind, message[1]), None)
            value = message[2] if len(message) > 2 and isinstance(message[2], int) else 0
        if future is not None and not future.done():
            future.set_result(value)

    def _deliver(self, relay: Relay, data: bytes) -> None:
        fds = list(relay.pending_fds)
        relay.pending_fds.clear()
        if relay.outbox:
            relay.outbox.append((data, fds))
            return
        self._send_to_lab(relay, data, fds)

    def _send_to_lab(self, relay: Relay, data: bytes, fds: list[socket.socket]) -> None:
        assert self._loop is not None
        try:
            if fds:
                rights = array.array("i", [s.fileno() for s in fds])
                sent = relay.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
                for s in fds:
                    s.close()  # the lab holds its own copy now
                fds = []
            else:
                sent = relay.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            return
        if sent < len(data) or fds:
            relay.outbox.appendleft((data[sent:], fds))
            self._loop.add_writer(relay.sock.fileno(), self._flush_relay, relay)

    def _flush_relay(self, relay: Relay) -> None:
        assert self._loop is not None
        self._loop.remove_writer(relay.sock.fileno())
        pending = list(relay.outbox)
        relay.outbox.clear()
        for data, fds in pending:
            if relay.outbox:
                relay.outbox.append((data, fds))
            else:
                self._send_to_lab(relay, data, fds)
        if relay.ended is not None and not relay.outbox:
            self._drop_relay(relay)

    def _finish_relay(self, relay: Relay) -> None:
        """The process ended: once the lab has every byte it sent, its channel closes (the lab reads the end)."""
        if not relay.outbox:
            self._drop_relay(relay)

    def _drop_relay(self, relay: Relay) -> None:
        assert self._loop is not None
        if self.relays.get(relay.number) is not relay:
            return
        self._loop.remove_reader(relay.sock.fileno())
        self._loop.remove_writer(relay.sock.fileno())
        relay.sock.close()
        for s in relay.pending_fds:
            s.close()
        del self.relays[relay.number]
        self.by_inode.pop(relay.inode, None)

    # Ending.

    def _connection_ended(self) -> None:
        """ssh's stdout ended: the agent, and with it every process on the host, is gone."""
        assert self._loop is not None and self.ssh is not None and self.ssh.stdout is not None
        if self.dropped:
            return
        self.dropped = True
        self._loop.remove_reader(self.ssh.stdout.fileno())
        self._on_stderr_rest()
        try:
            returncode = self.ssh.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            returncode = None
        said = self._stderr.decode("utf-8", "replace")
        if self.info:  # it was up: say what ssh said of its end
            why = dropped(returncode, said)
        else:
            why = failure(self.host.name, self.host.destination, returncode, said, self._greeting)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(LabError(why))
        self._waiting.clear()
        live = [r for r in self.relays.values() if r.ended is None]
        for relay in live:
            relay.lost = True
            self._drop_relay(relay)
        if self.info and not self.closed:
            names = "its processes have ended" if live else "no process of the lab was running there"
            self.say(f"the connection to {self.host.name} ({self.host.destination}) dropped: {names} ({why})", "error")

    def _on_stderr_rest(self) -> None:
        assert self.ssh is not None and self.ssh.stderr is not None
        try:
            while chunk := os.read(self.ssh.stderr.fileno(), 4096):
                self._stderr += chunk
        except OSError:
            pass

    async def close(self, timeout: float = 5.0) -> None:
        """Ask the agent to end every process and itself; wait (bounded) for ssh to exit."""
        if self.ssh is None:
            return
        self.send(("quit",))
        self.closed = True
        assert self.ssh.stdin is not None
        deadline = time.monotonic() + timeout
        while self.ssh.poll() is None and time.monotonic() < deadline:
            if not self._outbox:
                self._close_stdin()
            await asyncio.sleep(0.01)
        self.abort()

    def _close_stdin(self) -> None:
        assert self.ssh is not None and self.ssh.stdin is not None and self._loop is not None
        if not self.ssh.stdin.closed:
            self._loop.remove_writer(self.ssh.stdin.fileno())
            self.ssh.stdin.close()

    def abort(self) -> None:
        """End ssh now (the agent sees its stdin end and ends every lab process there)."""
        if self.ssh is None:
            return
        self.closed = True
        if self.ssh.poll() is None:
            self.ssh.kill()
        try:
            self.ssh.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass
        if self._loop is not None and not self._loop.is_closed():
            for pipe in (self.ssh.stdin, self.ssh.stdout, self.ssh.stderr):
                if pipe is not None and not pipe.closed:
                    self._loop.remove_reader(pipe.fileno())
                    self._loop.remove_writer(pipe.fileno())
                    pipe.close()
            for relay in list(self.relays.values()):
                relay.lost = relay.ended is None
                self._drop_relay(relay)
