"""The remote end of a remote host: runs on the far machine (Python 3.8 or newer), from memory.

sockplay sends this module, playground.protocol and playground/worker/ over the
ssh connection (see payload.py); the bootstrap imports them from that message
and calls main(). Frames on stdin and stdout (protocol.encode) carry, tagged
with a channel number, the bytes of each lab process's control channel, so a
lab process here is the very same worker as on sockplay's machine: the agent
forks it (a fresh session, descriptors 0-2 on /dev/null, nothing else open but
its channel) and relays bytes, and the descriptors a fork sends with its result.

The agent watches stdin: when it ends (sockplay quit or was killed, or the
connection dropped) it kills every lab process and exits. A lab process whose
channel closes (the agent died) exits by itself, as a local one does.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import selectors
import signal
import socket
import struct
import sys
import time
from collections import deque

from playground import protocol

CHUNK = 256 * 1024
ETH_P_ALL = 3
SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4
HOLD_NS = 500_000_000
HELD_FRAMES = 4096
_PR_SET_CHILD_SUBREAPER = 36
# How long a process whose channel closed may take to become a zombie (or vanish) before it is given up on.
EXIT_WAIT = 2.0


class Capture:
    """The lab's packets on this machine (every interface), where the agent may capture: root or CAP_NET_RAW.

    Only TCP and UDP segments to or from a port a lab process here has bound (learnt from its
    results), and ICMP errors about them, are sent: the machine's other traffic (ssh's own
    included) stays here.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setblocking(False)
        self.ports: set[int] = set()
        # Frames of no known port yet: a connect's SYN leaves before its result names the port.
        self.held: deque[tuple[int, int, bytes]] = deque(maxlen=HELD_FRAMES)

    def learn(self, channel: Channel, data: bytes) -> list[tuple[int, bytes]]:
        """Note the ports in a lab process's results; the held frames they make the lab's."""
        try:
            messages = channel.frames.feed(data)
        except Exception:
            return []
        known = len(self.ports)
        for message in messages:
            try:
                local = message[2].get("local") if message[1] == protocol.DONE else None
                if local:
                    self.ports.add(int(local[1]))
            except Exception:
                continue
        return self.release() if len(self.ports) > known else []

    def release(self) -> list[tuple[int, bytes]]:
        oldest = time.time_ns() - HOLD_NS
        out: list[tuple[int, bytes]] = []
        kept: deque[tuple[int, int, bytes]] = deque(maxlen=HELD_FRAMES)
        for stamp, ethertype, data in self.held:
            if stamp < oldest:
                continue
            if self.ours(ethertype, data):
                out.append((stamp, _frame(ethertype, data)))
            else:
                kept.append((stamp, ethertype, data))
        self.held = kept
        return out

    def read(self) -> list[tuple[int, bytes]]:
        frames = []
        for _ in range(256):
            try:
                data, ancdata, _flags, address = self.sock.recvmsg(65535, socket.CMSG_SPACE(16))
            except (BlockingIOError, InterruptedError):
                break
            ifname, ethertype, kind = address[0], address[1], address[2]
            if ifname == "lo" and kind == PACKET_OUTGOING:
                continue  # on lo every frame is seen twice: keep it arriving
            stamp = time.time_ns()
            for level, typ, payload in ancdata:
                if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(payload) >= 16:
                    seconds, nanoseconds = struct.unpack_from("qq", payload)
                    stamp = seconds * 1_000_000_000 + nanoseconds
            if self.ours(ethertype, data):
                frames.append((stamp, _frame(ethertype, data)))
            elif ethertype in (0x0800, 0x86DD):
                self.held.append((stamp, ethertype, data))
        return frames

    def ours(self, ethertype: int, data: bytes) -> bool:
        if not self.ports:
            return False
        if ethertype == 0x0800 and len(data) >= 20:
            offset, proto = (data[0] & 0x0F) * 4, data[9]
            if proto == 1 and len(data) >= offset + 8 + 20:  # an ICMP error quotes the datagram it is about
                inner = offset + 8
                offset, proto = inner + (data[inner] & 0x0F) * 4, data[inner + 9]
        elif ethertype == 0x86DD and len(data) >= 40:
            offset, proto = 40, data[6]
        else:
            return False
        if proto not in (6, 17) or len(data) < offset + 4:
            return False
        source, destination = struct.unpack_from("!HH", data, offset)
        return source in self.ports or destination in self.ports


def _frame(ethertype: int, data: bytes) -> bytes:
    """The packet behind an Ethernet header (no addresses), as sockplay's decoder reads frames."""
    return b"\0" * 12 + struct.pack("!H", ethertype) + data


def open_capture() -> tuple[Capture | None, str | None]:
    """The capture, or why there is none."""
    try:
        return Capture(), None
    except PermissionError:
        return None, "capturing there needs root or CAP_NET_RAW"
    except (OSError, AttributeError) as exc:
        return None, f"no packet socket there ({exc})"


class Channel:
    """One lab process's control channel, as the agent relays it."""

    def __init__(self, number: int, sock: socket.socket, pid: int | None, parent_pid: int | None) -> None:
        self.number = number
        self.sock = sock
        self.pid = pid  # known at spawn; for a fork's child, from its hello
        self.parent_pid = parent_pid  # a fork's child: its parent lab process (checked against the kernel)
        self.first = True
        self.frames = protocol.FrameBuffer()  # its frames, read only when capturing (for its ports)
        self.outbox: deque[bytes] = deque()  # bytes from sockplay its channel could not take yet


class Agent:
    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.channels: dict[int, Channel] = {}
        self.spawned: set[int] = set()  # the lab processes the agent forked itself
        self.reaped: dict[int, int] = {}  # pid -> wait status, of processes the agent reaped
        self.inbox = protocol.FrameBuffer()
        self.next_channel = 1 << 20  # numbers for forks' channels; sockplay numbers its spawns below this
        self.capture, self.no_capture = open_capture()

    # Talking to sockplay.

    def send(self, message: tuple) -> None:
        frame = protocol.encode(message)
        view = memoryview(frame)
        while view:
            try:
                written = os.write(1, view)
            except InterruptedError:
                continue
            view = view[written:]

    def hello(self) -> None:
        u = platform.uname()
        self.send(
            (
                "hello",
                {
                    "python": platform.python_version(),
                    "kernel": f"{u.system} {u.release} {u.machine}",
                    "node": u.node,
                    "ssh": os.environ.get("SSH_CONNECTION", ""),
                    "uid": os.geteuid(),
                    "pid": os.getpid(),
                    "no_capture": self.no_capture,
                },
            )
        )

    def serve(self) -> None:
        try:
            ctypes.CDLL(None).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans of lab processes come to us
        except (OSError, AttributeError):
            pass
        os.set_blocking(0, False)
        self.selector.register(0, selectors.EVENT_READ, None)
        if self.capture is not None:
            self.selector.register(self.capture.sock, selectors.EVENT_READ, self.capture)
        self.hello()
        while True:
            for key, events in self.selector.select(0.5):
                if events & selectors.EVENT_WRITE:
                    self.flush_channel(key.data)
                if not events & selectors.EVENT_READ:
                    continue
                if key.data is None:
                    if not self.read_stdin():
                        return
                elif key.data is self.capture:
                    frames = self.capture.read()
                    if frames:
                        self.send(("frames", frames))
                else:
                    self.read_channel(key.data)
            self.reap_orphans()

    def read_stdin(self) -> bool:
        try:
            data = os.read(0, CHUNK)
        except (BlockingIOError, InterruptedError):
            return True
        if not data:
            return False
        for message in self.inbox.feed(data):
            if not self.handle(message):
                return False
        return True

    def handle(self, message: tuple) -> bool:
        kind = message[0]
        if kind == "data":
            channel = self.channels.get(message[1])
            if channel is not None:
                self.to_channel(channel, message[2])
        elif kind == "spawn":
            self.spawn(message[1])
        elif kind == "signal":
            self.signal(message[1], message[2])
        elif kind == "ping":
            self.send(("pong", message[1], time.time_ns()))
        elif kind == "quit":
            return False
        return True

    # Lab processes.

    def spawn(self, number: int) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pid = os.fork()
        except OSError as exc:
            ours.close()
            theirs.close()
            self.send(("failed", number, f"fork: {exc.strerror}"))
            return
        if pid == 0:
            self.become_worker(theirs.detach())
        theirs.close()
        self.spawned.add(pid)
        self.add_channel(Channel(number, ours, pid, None))
        self.send(("spawned", number, pid))

    def become_worker(self, ctl: int) -> None:
        """In the forked child: a fresh lab process, as sockplay would start it locally."""
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            keep = {0, 1, 2, ctl}
            for name in os.listdir("/proc/self/fd"):
                fd = int(name)
                if fd not in keep:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            signal.set_wakeup_fd(-1)
            sys.argv = ["sockplay-worker", str(ctl)]
            from playground.worker.main import main

            main()
        finally:
            os._exit(0)

    def to_channel(self, channel: Channel, data: bytes) -> None:
        """Pass bytes on to a lab process without blocking: what its channel cannot take now waits, in order."""
        if not channel.outbox:
            try:
                sent = channel.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                return  # it has ended: its channel's end is reported when read
            if sent == len(data):
                return
            data = data[sent:]
            self.selector.modify(channel.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, channel)
        channel.outbox.append(data)

    def flush_channel(self, channel: Channel) -> None:
        if self.channels.get(channel.number) is not channel:
            return  # it ended (its end was read first)
        while channel.outbox:
            try:
                sent = channel.sock.send(channel.outbox[0])
            except BlockingIOError:
                return
            except OSError:
                channel.outbox.clear()
                break
            if sent < len(channel.outbox[0]):
                channel.outbox[0] = channel.outbox[0][sent:]
                return
            channel.outbox.popleft()
        self.selector.modify(channel.sock, selectors.EVENT_READ, channel)

    def add_channel(self, channel: Channel) -> None:
        channel.sock.setblocking(False)
        self.channels[channel.number] = channel
        self.selector.register(channel.sock, selectors.EVENT_READ, channel)

    def read_channel(self, channel: Channel) -> None:
        try:
            data, ancdata, _flags, _ = channel.sock.recvmsg(CHUNK, socket.CMSG_SPACE(16))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, ancdata = b"", []
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(payload) - len(payload) % 4
                for i in range(0, usable, 4):
                    fd = int.from_bytes(payload[i : i + 4], sys.byteorder)
                    self.next_channel += 1
                    child = Channel(self.next_channel, socket.socket(fileno=fd), None, channel.pid)
                    self.add_channel(child)
                    self.send(("child", channel.number, child.number))
        if not data:
            self.ended(channel)
            return
        if channel.first and channel.pid is None:
            self.check_hello(channel, data)
        channel.first = False
        self.send(("data", channel.number, data))
        if self.capture is not None:
            frames = self.capture.learn(channel, data)
            if frames:
                self.send(("frames", frames))

    def check_hello(self, channel: Channel, data: bytes) -> None:
        """A fork's child says its pid in its first frame: believed only if the kernel says it is that child."""
        try:
            (size,) = struct.unpack_from(">I", data)
            _, kind, payload = protocol.FrameBuffer().feed(data[: 4 + size])[0]
            pid = payload["pid"]
        except Exception:
            return
        if kind == protocol.HELLO and isinstance(pid, int) and parent_of(pid) == channel.parent_pid:
            channel.pid = pid

    def signal(self, number: int, signum: int) -> None:
        channel = self.channels.get(number)
        if channel is None or channel.pid is None:
            return
        try:
            os.kill(channel.pid, signum)
        except OSError:
            pass

    def ended(self, channel: Channel) -> None:
        """A channel closed: its process is ending. Say how it ended (a zombie keeps its status for its parent)."""
        self.selector.unregister(channel.sock)
        channel.sock.close()
        del self.channels[channel.number]
        status, zombie = None, False
        pid = channel.pid
        if pid in self.spawned:
            self.spawned.discard(pid)
            status = self.wait_for(pid)
        elif pid is not None:
            status, zombie = zombie_status(pid)
            if status is None:
                status = self.reaped.pop(pid, None)
        self.send(("ended", channel.number, status, zombie))

    def wait_for(self, pid: int) -> int | None:
        if pid in self.reaped:
            return self.reaped.pop(pid)
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return self.reaped.pop(pid, None)

    def reap_orphans(self) -> None:
        """Reap what came to us: lab processes whose parent ended (the agent is their subreaper)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.reaped[pid] = status
            if len(self.reaped) > 4096:  # statuses nobody asked for: keep the newest
                self.reaped.pop(next(iter(self.reaped)))

    def kill_all(self) -> None:
        for pid in list(self.spawned):
            try:
                os.killpg(pid, signal.SIGKILL)  # the process and the forks in its session
            except OSError:
                pass
        for channel in self.channels.values():
            if channel.pid is not None:
                try:
                    os.kill(channel.pid, signal.SIGKILL)
                except OSError:
                    pass


def parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def zombie_status(pid: int) -> tuple[int | None, bool]:
    """(wait status, True) once the process is a zombie; (None, False) if it is gone (reaped) or never got there."""
    deadline = time.monotonic() + EXIT_WAIT
    while time.monotonic() < deadline:
        fields = _stat(pid)
        if not fields:
            return None, False
        if fields[0] == "Z":
            return int(fields[-1]), True
        time.sleep(0.001)
    return None, False


def _stat(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return []
    return raw[raw.rfind(")") + 2 :].split()


def main() -> None:
    if not sys.platform.startswith("linux"):  # lab processes call Linux's libc and read /proc
        sys.stderr.write(f"sockplay's lab processes run on Linux only, and this machine runs {platform.system()}\n")
        sys.exit(5)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    agent = Agent()
    try:
        agent.serve()
    except (OSError, EOFError, ValueError) as exc:  # sockplay's side is gone, or sent what no sockplay sends
        if not (isinstance(exc, OSError) and exc.errno in (errno.EPIPE, errno.EBADF)):
            sys.stderr.write(f"sockplay agent: {exc}\n")
    finally:
        agent.kill_all()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and agent.spawned:
            for pid in list(agent.spawned):
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        agent.spawned.discard(pid)
                except ChildProcessError:
                    agent.spawned.discard(pid)
            time.sleep(0.01)
